# MLflow tracking server with the Postgres and S3 clients for a production backend.
FROM python:3.11-slim
RUN pip install --no-cache-dir "mlflow>=3.17,<3.18" psycopg2-binary boto3
EXPOSE 5000
# Backend and artifact URIs come from the environment (see compose.yaml); secrets never in the image.
CMD ["sh", "-c", "mlflow server --host 0.0.0.0 --port 5000 --backend-store-uri \"$MLFLOW_BACKEND_STORE_URI\" --artifacts-destination \"$MLFLOW_ARTIFACTS_DESTINATION\""]
