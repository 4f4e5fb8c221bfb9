from services.runtime.app import run_service
from services.conversations.servicer import setup

run_service("conversations", setup)
