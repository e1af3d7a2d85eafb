"""Settings from the environment (prefix OPTRIA_), DESIGN.md §9."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
VAR_DIR = PROJECT_ROOT / "var"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPTRIA_", extra="ignore")

    database_url: str = f"sqlite:///{VAR_DIR / 'optria.db'}"
    secret_key: str = ""
    demo_mode: bool = False
    demo_password: str = "optria-demo"

    pi_base_url: str | None = None
    pi_data_server: str | None = None
    pi_username: str | None = None
    pi_password: str | None = None
    pi_verify_tls: bool = True

    stream_interval_seconds: float = Field(default=2.0, gt=0)
    # Alarm evaluation (DESIGN.md §14); unset: the stream interval, so one poll serves both.
    alarm_scan_seconds: float | None = Field(default=None, gt=0)
    # Asset health (DESIGN.md §15): every asset is assessed this often.
    health_interval_seconds: float = Field(default=60.0, gt=0)
    connector_timeout_seconds: float = Field(default=5.0, gt=0)
    host: str = "127.0.0.1"
    port: int = 8000

    # Trust boundary (DESIGN.md §16). What integrations may reach beyond public addresses:
    # comma-separated CIDRs or host names, each with an optional :port ([v6-cidr]:port).
    connector_allow: str = ""
    # Encrypts integration secrets at rest; unset: derived from secret_key. Comma-separated
    # for rotation (the first encrypts, every one decrypts).
    secrets_key: str = ""
    # OPC UA client certificates and keys: integrations name files of this directory only.
    opcua_pki_dir: str = str(VAR_DIR / "opcua-pki")
    session_idle_minutes: float = Field(default=30, gt=0)
    session_max_age_seconds: int = 12 * 3600
    api_token_max_age_seconds: int = 8 * 3600
    streams_per_user: int = Field(default=20, ge=1)
    # argon2 cost; production keeps the library defaults (tests lower them to stay fast).
    argon2_time_cost: int = 3
    argon2_memory_cost_kib: int = 65536

    @model_validator(mode="after")
    def _demo_secret_key(self) -> Settings:
        # Outside demo mode the web app refuses to start without a key (main.create_app);
        # commands such as `migrate` do not need one.
        if not self.secret_key and self.demo_mode:
            self.secret_key = _persistent_demo_secret()
        return self


def _persistent_demo_secret() -> str:
    """Keep one generated key under var/ so demo sessions survive restarts."""
    key_file = VAR_DIR / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    key_file.write_text(key)
    key_file.chmod(0o600)
    return key


@lru_cache
def get_settings() -> Settings:
    return Settings()
