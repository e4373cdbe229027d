# The inference image infra/ deploys to ECS (config key `mldr:image`): the same server the
# sandbox runs in each region (mldr.sandbox.inference.create_app), started by
# mldr.sandbox.inference_container, which reads the task definition's environment
# (MLDR_REGION, MLDR_MODEL_BUCKET, MLDR_MODEL_PREFIX, PORT) and uses the task role's credentials.
#
# Build and push from the repository root (infra/README.md, "The inference image"):
#   docker build -f docker/inference.Dockerfile -t mldr-inference:0.1.0 .
#
# Versions: uv.lock's, through docker/inference-constraints.txt (tests/unit/test_inference_image.py
# checks them, the COPY sources and the entrypoint module).
FROM python:3.11.7-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The server's dependencies first (a layer that changes only when the lock does): mldr's core
# (botocore, pydantic, httpx, jinja2) and the server's (boto3, fastapi, uvicorn, scikit-learn).
COPY docker/inference-constraints.txt /tmp/constraints.txt
RUN pip install --no-cache-dir -c /tmp/constraints.txt \
        botocore pydantic httpx jinja2 boto3 fastapi uvicorn scikit-learn

WORKDIR /opt/mldr
COPY pyproject.toml README.md ./
COPY plugins/mldr ./plugins/mldr
RUN pip install --no-cache-dir --no-deps . && python -c "import mldr.sandbox.inference_container"

# Never root in the task.
RUN useradd --system --uid 10001 --no-create-home mldr
USER 10001

EXPOSE 8080
ENTRYPOINT ["python", "-m", "mldr.sandbox.inference_container"]
