"""Bot actions out: chat.actions.v1 → Telegram, WeCom group robots, operators' own bridges."""
