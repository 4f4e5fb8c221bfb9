from services.runtime.app import run_service
from services.webhooks.servicer import setup
from services.webhooks.settings import WebhookSettings

run_service("webhooks", setup, WebhookSettings)
