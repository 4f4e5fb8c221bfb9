from services.conversations.servicer import setup
from services.conversations.settings import ConversationSettings
from services.runtime.app import run_service

run_service("conversations", setup, ConversationSettings)
