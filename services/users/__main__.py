from services.runtime.app import run_service
from services.users.servicer import setup
from services.users.settings import UserSettings

run_service("users", setup, UserSettings)
