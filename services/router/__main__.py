from services.router.service import setup
from services.router.settings import RouterSettings
from services.runtime.app import run_service

run_service("router", setup, RouterSettings)
