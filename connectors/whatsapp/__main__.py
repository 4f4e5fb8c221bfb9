from connectors.whatsapp.service import setup
from connectors.whatsapp.settings import WhatsAppSettings
from services.runtime.app import run_service

run_service("whatsapp", setup, WhatsAppSettings)
