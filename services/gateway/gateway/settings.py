"""Gateway settings (environment prefix GATEWAY_)."""

from pydantic import Field, IPvAnyNetwork, SecretStr
from pydantic_settings import SettingsConfigDict

from qunzhu_common.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    service_name: str = "gateway"
    membership_url: str = "http://127.0.0.1:8001"
    content_url: str = "http://127.0.0.1:8002"
    engagement_url: str = "http://127.0.0.1:8003"
    upstream_timeout_s: float = Field(default=10.0, gt=0)
    upstream_retries: int = Field(default=2, ge=0, description="Extra attempts for idempotent calls only.")

    # -- secrets -------------------------------------------------------------------------------
    secret_key: SecretStr = Field(
        default=SecretStr(""),
        description="Fernet key (urlsafe base64, 32 bytes) encrypting connector secrets; several, comma "
        "separated, for rotation (the first encrypts). Default: a key file <data_dir>/gateway.key.",
    )
    jwt_secret: SecretStr = Field(
        default=SecretStr(""), description="HS256 key of member tokens; default: derived from secret_key."
    )
    jwt_issuer: str = "qunzhu-gateway"
    jwt_audience: str = "qunzhu-api"
    jwt_ttl_s: int = Field(default=3600, ge=60)
    admin_api_key: SecretStr = Field(
        default=SecretStr(""), description="Platform operator key (X-API-Key); empty disables it."
    )

    ops_token: SecretStr = Field(
        default=SecretStr(""),
        description="Bearer token for /services/<name>/metrics from outside the machine; empty: loopback only.",
    )

    # -- public API --------------------------------------------------------------------------
    cors_origins: list[str] = Field(default_factory=list, description="Allowed origins; empty: no CORS.")
    rate_limit_per_s: float = Field(default=20.0, gt=0, description="Token refill per client per second.")
    rate_limit_burst: int = Field(default=60, ge=1, description="Bucket size per client.")
    trusted_proxies: list[IPvAnyNetwork] = Field(
        default_factory=list,
        description="Proxies whose X-Forwarded-For is believed (CIDRs); empty: the peer address is the client.",
    )
    api_max_body_bytes: int = Field(default=1024 * 1024, ge=1024, description="Larger API bodies get a 413.")
    body_read_timeout_s: float = Field(
        default=10.0, gt=0, description="A body that stalls this long between two parts gets a 408."
    )
    login_code_ttl_s: int = Field(default=300, ge=30)
    login_code_max_attempts: int = Field(default=5, ge=1)
    telegram_login_bot_token: SecretStr = Field(
        default=SecretStr(""), description="Bot token checking Telegram Login Widget data; empty disables it."
    )
    telegram_login_max_age_s: int = Field(default=86400, ge=60)
    telegram_login_bot_username: str = Field(default="", max_length=64, pattern=r"^[A-Za-z0-9_]*$", description=(
        "The login bot's username (without @): with the bot token set, /console offers the Telegram Login Widget."))
    wecom_login_corp_id: str = Field(default="", max_length=100, description=(
        "WeCom web login (POST /api/v1/auth/wecom): the enterprise's CorpID; empty disables it."))
    wecom_login_secret: SecretStr = Field(default=SecretStr(""), description=(
        "The Secret of the self-built app whose OAuth page the login uses (its access token reads the userid)."))
    wecom_api_base: str = Field(default="https://qyapi.weixin.qq.com", description=(
        "WeCom's server API (gettoken, auth/getuserinfo, message/send): a loopback stand-in in tests."))

    # -- webhooks in -------------------------------------------------------------------------
    webhook_max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    outbox_wake_delay_s: float = Field(
        default=0.05, ge=0, description="Gather this long after a commit before waking the outbox relay."
    )
    webhook_tolerance_s: int = Field(default=300, ge=1)
    webhook_commit_writers: int = Field(default=1, ge=1, le=16, description=(
        "Group commits of chat deliveries in flight at once on PostgreSQL (one batch's Python runs while another "
        "waits for the database, as with two gateway replicas); SQLite has one write connection: always 1 there."))
    webhook_rate_per_s: float = Field(
        default=500.0, gt=0, description="Verified chat deliveries per connector per second (then 429 + Retry-After)."
    )
    webhook_burst: int = Field(default=5000, ge=1, description="Deliveries a connector may send at once.")
    stripe_webhook_secrets: list[SecretStr] = Field(
        default_factory=list, description="whsec_… secrets; several during a rotation."
    )
    wechatpay_apiv3_key: SecretStr = Field(default=SecretStr(""), description="The 32-byte APIv3 key.")
    wechatpay_platform_certificates: str = Field(
        default="", description="PEM of the WeChat Pay platform certificates (several during a rotation)."
    )
    wechatpay_public_key: str = Field(
        default="", description="PEM of the WeChat Pay public key (public-key mode, what new merchants get); "
        "verifies notifications and API answers whose Wechatpay-Serial is its id. Both this and platform "
        "certificates may be set during a migration.",
    )
    wechatpay_public_key_id: str = Field(
        default="", description="Id of that public key, PUB_KEY_ID_… (Wechatpay-Serial of what it signed)."
    )

    # -- bot actions out ---------------------------------------------------------------------
    telegram_api_base: str = "https://api.telegram.org"
    wecom_robot_base: str = "https://qyapi.weixin.qq.com"
    qq_api_base: str = Field(default="https://api.sgroup.qq.com", description="QQ official bot OpenAPI (replies).")
    qq_token_base: str = Field(default="https://bots.qq.com", description="QQ official bot app access tokens.")
    join_checkout_url_template: str = Field(default="", description=(
        "Where a refused QQ group join request (OneBot) is sent to pay, e.g. "
        "https://example.org/c/{community_id}/join; empty: the refusal names no link."))
    action_poll_interval_s: float = Field(default=0.5, gt=0)
    action_max_attempts: int = Field(default=5, ge=1, description=(
        "Calls per bot action before chat.action.failed: the one retry budget (content sends a broadcast's "
        "command once and waits for this answer; keep CONTENT_DELIVERY_GIVES_UP_AFTER_S above its duration)."))
    action_backoff_s: float = Field(default=1.0, ge=0)
    action_timeout_s: float = Field(default=10.0, gt=0)
    action_group_rate_per_s: float = Field(default=1.0, gt=0, description="Bot actions per chat group.")
    action_group_burst: int = Field(default=5, ge=1)
    action_platform_rate_per_s: float = Field(default=25.0, gt=0, description="Bot actions per platform.")
    action_platform_burst: int = Field(default=30, ge=1)
    run_actions: bool = Field(default=True, description="Execute bot actions in this process.")

    # -- refunds out (refund.requested → the payment provider) -----------------------------------
    stripe_secret_key: SecretStr = Field(
        default=SecretStr(""), description="sk_… key calling Stripe's Refunds API; empty: Stripe refunds fail."
    )
    stripe_api_base: str = "https://api.stripe.com"
    wechatpay_mchid: str = Field(default="", description="WeChat Pay merchant id; empty: WeChat Pay refunds fail.")
    wechatpay_merchant_serial_no: str = Field(default="", description="Serial number of the merchant certificate.")
    wechatpay_merchant_private_key: SecretStr = Field(
        default=SecretStr(""), description="PEM of the merchant API private key signing WeChat Pay API calls."
    )
    wechatpay_api_base: str = "https://api.mch.weixin.qq.com"
    wechatpay_appid: str = Field(default="", description=(
        "AppID the WeChat Pay orders are made for (the mini-program's or official account's, bound to the "
        "merchant); empty: WeChat Pay checkout is refused."))
    wechatpay_notify_url: str = Field(default="", description=(
        "notify_url of WeChat Pay orders: the gateway's public https://…/webhooks/payments/wechatpay; "
        "empty: WeChat Pay checkout is refused."))
    wechatpay_refund_notify_url: str = Field(
        default="", description="notify_url sent with WeChat Pay refunds (the gateway's "
        "/webhooks/payments/wechatpay); empty: the URL configured on the merchant platform."
    )
    refund_max_attempts: int = Field(default=8, ge=1, description="Attempts before a refund fails for good.")
    refund_backoff_s: float = Field(default=5.0, ge=0, description="First retry delay; doubles per attempt.")
    refund_timeout_s: float = Field(default=20.0, gt=0, description="Time allowed for one provider call.")
    refund_poll_interval_s: float = Field(default=1.0, gt=0)
    run_refunds: bool = Field(default=True, description="Execute refunds in this process.")
    # -- orders (POST /communities/{id}/checkout) ------------------------------------------------
    order_ttl_s: int = Field(default=1800, ge=1800, le=86400, description=(
        "An unpaid order expires this long after it is created (Stripe Checkout allows 30 min to 24 h)."))
    order_expiry_interval_s: float = Field(default=60.0, gt=0, description="How often expired orders are closed.")
    stripe_checkout_success_url: str = Field(
        default="http://127.0.0.1:8000/paid?order={ORDER_ID}",
        description="Where Stripe Checkout sends the payer after paying; {ORDER_ID} is replaced by the order id.")
    stripe_checkout_cancel_url: str = Field(
        default="http://127.0.0.1:8000/checkout-cancelled?order={ORDER_ID}",
        description="Where Stripe Checkout sends a payer who gives up; {ORDER_ID} as above.")
    run_orders: bool = Field(default=True, description="Expire unpaid orders and reconcile in this process.")
    reconcile_interval_s: float = Field(default=86400.0, gt=0, description="How often payments are reconciled.")
    reconcile_window_s: int = Field(default=2 * 86400, ge=3600, description=(
        "Each reconciliation compares the payments and refunds of this past window (overlapping days)."))
    reconcile_settle_s: int = Field(default=3600, ge=0, description=(
        "The newest part of the window left out: notifications of the last hour may still be on their way."))
    bridge_allow_http: bool = Field(
        default=False, description="Allow plain-http bot bridge URLs (local development and tests only)."
    )
