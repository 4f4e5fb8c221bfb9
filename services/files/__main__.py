"""FileService: presigned multipart uploads to S3, verified on completion, processed (content
type, clamd scan, thumbnails), download URLs of CLEAN files."""
from services.runtime.app import run_service
from services.files.servicer import setup
from services.files.settings import FileSettings

run_service("files", setup, FileSettings)
