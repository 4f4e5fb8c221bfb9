"""FileService: presigned multipart uploads to S3, verified on completion, download URLs."""
from services.runtime.app import run_service
from services.files.servicer import setup
from services.files.settings import FileSettings

run_service("files", setup, FileSettings)
