"""ConversationService: 1:1 and group conversations, members and their history."""
