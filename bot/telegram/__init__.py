"""The Telegram front end: python-telegram-bot handlers over `QAEngine.ask`, and the bot's life cycle.

`app.bot_command` runs `qabot bot`; each module holds one job (see their docstrings).
"""
