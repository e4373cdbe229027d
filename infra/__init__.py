"""mldr's Pulumi program: replicated buckets, dual-region inference, failover DNS, DR control plane.

`__main__.py` is the Pulumi entrypoint; `program.build()` declares everything from an
`InfraConfig` (`config.py`) and returns the stack outputs, including `topology`, the document
the runbooks read. Components live in `components/`, the policy pack in `policy/`.
"""
