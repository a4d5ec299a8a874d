"""The Telegram bot (aiogram 3): a client of sellerpulse's API only (HTTP and an API key).

It onboards people, connects their shops, shows their data and settings, and delivers their
notifications exactly once (bot/delivery.py). It never imports `storage/`.

    bot/settings.py     BotSettings (SELLERPULSE_API_URL, SELLERPULSE_API_KEY, TELEGRAM_BOT_TOKEN, ...)
    bot/api.py          ApiClient: every API call the bot makes, errors translated at the boundary
    bot/flood.py        Telegram's flood limits on our side (pacing, 429 retry_after)
    bot/delivery.py     the delivery loop: poll, send, record, ack
    bot/texts.py        the bot's own texts in ru, pl and en
    bot/callbacks.py    typed callback data of every inline button
    bot/middlewares.py  the API client and the person (language, time zone) for every handler
    bot/routers/        one Router per feature
    bot/app.py          wiring: run() starts polling and delivery side by side
"""
