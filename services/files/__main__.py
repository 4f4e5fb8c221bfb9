from services.runtime.app import run_service
from services.files.servicer import setup

run_service("files", setup)
