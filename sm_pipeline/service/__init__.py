"""An emulated Amazon SageMaker (pipelines and model registry) and S3 on one loopback endpoint.

``python -m sm_pipeline serve [--host 127.0.0.1] [--port N] [--root DIR]``. Pipeline executions are run
in the background by the local runner (``sm_pipeline.local``) and recorded in its one record format;
S3 is moto's, kept in sync with the runner's object root. See docs/EMULATED_SAGEMAKER.md.

Modules: ``server`` (CLI, WSGI routing, signals), ``protocol`` (the JSON 1.1 wire format checked
against botocore's model), ``api`` (one method per action), ``state`` (pipelines, tags, tokens),
``executions`` (background runs), ``s3`` (moto's S3 over the object root), ``iam`` (the read-only IAM and
STS calls the SageMaker SDK makes to validate a role).
"""
