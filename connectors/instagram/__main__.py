from connectors.instagram.service import setup
from connectors.instagram.settings import InstagramSettings
from services.runtime.app import run_service

run_service("instagram", setup, InstagramSettings)
