from services.messaging.servicer import setup
from services.messaging.settings import MessagingSettings
from services.runtime.app import run_service

run_service("messaging", setup, MessagingSettings)
