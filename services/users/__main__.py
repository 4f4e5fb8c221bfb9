from services.runtime.app import run_service
from services.users.servicer import setup

run_service("users", setup)
