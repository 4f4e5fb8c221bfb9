from services.runtime.app import run_service
from services.messaging.servicer import setup

run_service("messaging", setup)
