"""The AWS implementation of `mldr.cloud`: botocore clients per region, the signed fast path
for S3, and the translation of AWS errors into `mldr.errors` (here and nowhere else)."""
