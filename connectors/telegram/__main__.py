from connectors.telegram.service import setup
from connectors.telegram.settings import TelegramSettings
from services.runtime.app import run_service

run_service("telegram", setup, TelegramSettings)
