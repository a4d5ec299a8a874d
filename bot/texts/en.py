"""English."""

TEXTS = {
    # onboarding
    "welcome_new": "Hi, {name}! I am sellerpulse: I back up every order of your Allegro and Wildberries "
    "shops and tell you what happens in them (new orders, cancellations, buyouts, returns, bad reviews, "
    "stock running out).\n\nNext: /connect a shop, or /join one with an invite code.",
    "welcome_back": "Welcome back, {name}! /help lists what I can do.",
    "reactivated": "Welcome back! Notifications resume from now on; what happened meanwhile is in "
    "/dashboard and /orders.",
    "ask_zone": "Which time zone shall I show times in?",
    "type_zone": "Send your time zone as an IANA name, e.g. Europe/Warsaw or Asia/Almaty.",
    "zone_invalid": "I do not know this time zone; send an IANA name such as Europe/Warsaw. Nothing changed.",
    "zone_saved": "Time zone: {zone}.",
    "zone_now": "Your time zone is {zone}. Pick another:",
    "btn_other_zone": "Other…",
    "help": "<b>What I can do</b>\n"
    "/dashboard: orders and revenue today, yesterday, 7 and 30 days\n"
    "/orders: recent orders (filter by status, open one)\n"
    "/stocks: products running low\n"
    "/reviews: new and unanswered reviews\n"
    "/analytics: sales over 7, 30, 90 or 180 days, with a chart\n"
    "/sync: sync a shop now\n"
    "/shops: your shops (rename, pause, invite, leave, remove)\n"
    "/connect: connect a WB or Allegro shop\n"
    "/join CODE: join a shop someone shared with you\n"
    "/settings: notifications, thresholds, grouping, language, time zone\n"
    "/timezone, /cancel, /help",
    "need_start": "Send /start first, so I know who you are.",
    "cancelled": "Cancelled.",
    "nothing_to_cancel": "Nothing to cancel.",
    "api_down": "sellerpulse is not reachable right now; nothing was changed. Try again in a minute.",
    "error": "That did not work: {message}",
    "not_found": "Not found (or not yours any more).",
    "owners_only": "Only the shop's owners may do this.",
    # connecting
    "connect_choose": "Which marketplace is the shop on?",
    "ask_shop_name": "What shall I call the shop? (1 to 128 characters, e.g. My WB shop)",
    "name_invalid": "A name is 1 to 128 characters and not a command. Send another, or /cancel.",
    "ask_wb_token": "Send the shop's WB API token (seller portal: Profile → Settings → API access; "
    "categories Statistics, Analytics, Feedbacks and Content, read only is enough). I delete your message "
    "as soon as I have read it.",
    "wb_connected": "✅ {name} is connected (shop {id}). Its first sync backs up the history quietly; "
    "notifications start after it.",
    "wb_invalid": "❌ WB rejected this token (401). Check it and its categories, then send it again, or /cancel.",
    "wb_malformed": "That cannot be a token: it is one line of printable characters without spaces. Send it "
    "again, or /cancel.",
    "wb_unverified": "WB did not answer the check, so nothing was saved (the token may well be fine). "
    "Try /connect again in a minute.",
    "allegro_code": "Open {link} and confirm the code <b>{code}</b> (valid until {until}). "
    "I will tell you when it is done.",
    "allegro_connected": "✅ {name} is connected (Allegro, shop {id}).",
    "allegro_denied": "❌ The Allegro login for {name} was refused. /connect starts again.",
    "allegro_expired": "⌛ The code for {name} expired before it was confirmed. /connect starts again.",
    "allegro_failed": "❌ The Allegro login for {name} failed. /connect starts again.",
    "allegro_unavailable": "Allegro did not start the login; try /connect again in a minute.",
    # shops
    "no_shops": "You have no shops yet: /connect one, or /join one with an invite code.",
    "shops_title": "<b>Your shops</b> (tap one):",
    "shop_card": "<b>{name}</b>\n{line}",
    "status_active": "active",
    "status_needs_reauth": "needs a new login",
    "status_disabled": "removed",
    "status_broken": "connection refused",
    "paused_mark": ", notifications paused",
    "role_owner": "owner",
    "role_member": "member",
    "btn_rename": "✏️ Rename",
    "btn_pause": "⏸ Pause notifications",
    "btn_resume": "▶️ Resume notifications",
    "btn_invite": "👥 Invite",
    "btn_leave": "🚪 Leave",
    "btn_remove": "🗑 Remove",
    "btn_remove_keep": "Remove, keep its data",
    "btn_remove_purge": "Remove and delete its data",
    "btn_cancel": "Cancel",
    "btn_back": "◀ Back",
    "ask_new_name": "Send the new name (1 to 128 characters), or /cancel.",
    "renamed": "Renamed: {name}.",
    "paused": "{name}: notifications paused",
    "resumed": "{name}: notifications back on",
    "invite": "Invite to <b>{name}</b>, for one person, valid until {until}:\n{link}\n"
    "or they send: <code>/join {code}</code>",
    "join_usage": "Send /join CODE with the code an owner gave you.",
    "join_refused": "This invite is unknown, used or expired; ask the owner for a new one.",
    "joined": "You joined <b>{name}</b> as a {role}. Its notifications come here from now on.",
    "left": "You left {name}.",
    "confirm_remove": "Remove <b>{name}</b>? Syncing stops and its token is dropped. Keep its backed-up "
    "orders, or delete them too?",
    "removed": "{name} is removed; its data is kept.",
    "removed_purged": "{name} and all its data are deleted.",
    # data
    "pick_shop": "Which shop?",
    "dash_title": "📊 <b>{name}</b>",
    "period_today": "Today: {orders} orders, {amount}",
    "period_yesterday": "Yesterday: {orders} orders, {amount}",
    "period_7d": "7 days: {orders} orders, {amount}",
    "period_30d": "30 days: {orders} orders, {amount}",
    "dash_stock": "Low stock: {n} products",
    "dash_reviews": "Reviews (24 h): {new} new, {negative} negative, {unanswered} unanswered",
    "dash_sync": "Last sync: {at}",
    "stocks_title": "📦 <b>{name}</b>: {total} products at or below {threshold}",
    "stocks_none": "📦 <b>{name}</b>: nothing at or below {threshold}.",
    "reviews": "⭐ <b>{name}</b>, last 7 days: {new} new, {unanswered} unanswered, {negative} negative.\n"
    "Average {avg} (all time {avg_all}, {total} reviews).",
    "analytics_pick": "📈 <b>{name}</b>: which period?",
    "days": "{n} days",
    "analytics": "📈 <b>{name}</b>, {days} days: {orders} orders ({cancelled} cancelled), {buyouts} buyouts, "
    "{returns} returns, revenue {revenue}",
    "orders_title": "🧾 <b>{name}</b>{filter}: orders {first}–{last} of {total}",
    "orders_empty": "🧾 <b>{name}</b>{filter}: no orders.",
    "btn_filter": "🔎 Status",
    "pick_status": "Show orders with status:",
    "order_all": "all",
    "order_new": "new",
    "order_paid": "paid",
    "order_processing": "processing",
    "order_sent": "sent",
    "order_delivered": "delivered",
    "order_cancelled": "cancelled",
    "order_returned": "returned",
    "order_head": "🧾 <b>Order {id}</b>",
    "order_status": "Status: {status} ({raw})",
    "order_bought": "Bought: {at}",
    "order_total": "Total: {total}",
    "order_cancelled_at": "Cancelled: {at}",
    # sync
    "sync_started": "🔄 Sync of {name} started (run <code>{run}</code>).",
    "sync_status": "Run <code>{run}</code>: {state}",
    "sync_state_unknown": "waiting",
    "sync_done": "Finished.",
    "sync_unknown": "No such run.",
    "sync_not_active": "{name} is not connected right now; connect it again first (/shops).",
    "sync_unavailable": "A sync cannot be started now: {message}",
    "btn_status": "🔄 Status",
    # settings
    "settings_title": "⚙️ <b>Settings</b> (tap to change)",
    "set_notifications_enabled": "All notifications",
    "set_new_orders_enabled": "New orders",
    "set_order_cancellations_enabled": "Cancellations",
    "set_order_buyouts_enabled": "Buyouts",
    "set_order_returns_enabled": "Returns",
    "set_negative_reviews_enabled": "Bad reviews",
    "set_critical_stocks_enabled": "Low stock",
    "set_notify_unpaid_orders": "Allegro: tell me before payment",
    "set_grouping_enabled": "Group messages",
    "set_review_rating_threshold": "Reviews at or below: {n}★",
    "set_stock_horizon_days": "Running out within: {n} days",
    "set_critical_stock_threshold": "Low stock at: {n} pcs",
    "set_max_group_size": "Group up to: {n} messages",
    "set_group_timeout": "Group wait: {n} s",
    "set_language": "Language: {value}",
    "set_time_zone": "Time zone: {value}",
    "pick_review_rating_threshold": "Tell me about reviews at or below how many stars? (0: never)",
    "pick_stock_horizon_days": "Warn when stock lasts fewer than how many days?",
    "pick_language": "Language of the bot and of notifications:",
    "ask_critical_stock_threshold": "Send the stock level (pcs, 0 to 100000) at which a product counts as low.",
    "ask_max_group_size": "Send how many messages one group may hold (1 to 50).",
    "ask_group_timeout": "Send how many seconds to wait for a group to fill (0 to 86400).",
    "not_a_number": "That is not a whole number; nothing changed. Send a number, or /cancel.",
    "rejected": "Not accepted ({why}); nothing changed.",
    "saved": "Saved.",
    "lang_ru": "Русский",
    "lang_pl": "Polski",
    "lang_en": "English",
    "lang_auto": "each shop's own",
    # the command menu
    "cmd_dashboard": "orders and revenue at a glance",
    "cmd_orders": "recent orders",
    "cmd_stocks": "products running low",
    "cmd_reviews": "reviews",
    "cmd_analytics": "sales with a chart",
    "cmd_sync": "sync a shop now",
    "cmd_shops": "your shops",
    "cmd_connect": "connect a shop",
    "cmd_settings": "settings",
    "cmd_help": "what I can do",
}
