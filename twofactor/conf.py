"""twofactor's settings: each one's name, default and meaning, in one place.

Read through `app_settings` at call time, never copied into a module constant
at import, so `override_settings` in tests (and a project's own settings
module) always win. A project sets only what it wants to change.
"""

from django.conf import settings


class AppSettings:
    @property
    def ISSUER(self) -> str:
        """TWOFACTOR_ISSUER: the name authenticator apps show above the code, and the name
        in the backup-codes file. Default: "Django"."""
        return getattr(settings, "TWOFACTOR_ISSUER", "Django")

    @property
    def ENCRYPTION_KEYS(self) -> list[str]:
        """TWOFACTOR_ENCRYPTION_KEYS: Fernet keys for the secrets at rest, newest first (the
        first encrypts, all decrypt). Default: none, and a key derived from SECRET_KEY,
        for development only (the deploy check twofactor.W001 says so)."""
        return list(getattr(settings, "TWOFACTOR_ENCRYPTION_KEYS", []))

    @property
    def BACKUP_CODE_KEYS(self) -> list[str]:
        """TWOFACTOR_BACKUP_CODE_KEYS: server-side keys of the backup-code hashes (an HMAC
        over scrypt), newest first: the first keys each new set, every key still checks the
        sets made with it, so a key rotates by going first and stays until the sets made
        with the old one are gone (each user's next set). Random strings of at least 32
        characters (twofactor.E004), kept out of the database: that is what makes a stolen
        database alone test no guess. Default: none, and keys derived from SECRET_KEY (then
        SECRET_KEY_FALLBACKS), so rotating SECRET_KEY with fallbacks keeps sets working."""
        return list(getattr(settings, "TWOFACTOR_BACKUP_CODE_KEYS", []))

    @property
    def DONE_URL(self) -> str:
        """TWOFACTOR_DONE_URL: where the user goes after enabling, disabling or generating
        codes, and where "Cancel" leads (a URL name or a path). Default: LOGIN_REDIRECT_URL."""
        return getattr(settings, "TWOFACTOR_DONE_URL", settings.LOGIN_REDIRECT_URL)

    @property
    def LOGIN_URL(self) -> str:
        """TWOFACTOR_LOGIN_URL: the password step, where a lapsed or voided code step starts
        over (a URL name or a path). Default: LOGIN_URL."""
        return getattr(settings, "TWOFACTOR_LOGIN_URL", settings.LOGIN_URL)

    @property
    def SUPPORT_URL(self) -> str:
        """TWOFACTOR_SUPPORT_URL: a page or mailto: link for users who lost their phone and
        their backup codes, offered on the code step. Default: "" (no link)."""
        return getattr(settings, "TWOFACTOR_SUPPORT_URL", "")

    @property
    def WEBAUTHN_RP_ID(self) -> str:
        """TWOFACTOR_WEBAUTHN_RP_ID: the WebAuthn relying party id, the host name passkeys are
        bound to (the site's domain, or a parent domain of it; never an IP address, which
        browsers refuse). Every origin in TWOFACTOR_WEBAUTHN_ORIGINS must be on it. Changing
        it later orphans every registered key. Default: "localhost", for development only."""
        return getattr(settings, "TWOFACTOR_WEBAUTHN_RP_ID", "localhost")

    @property
    def WEBAUTHN_ORIGINS(self) -> list[str]:
        """TWOFACTOR_WEBAUTHN_ORIGINS: the exact origins (scheme, host and port) whose
        registrations and sign-ins are accepted; anything else is refused, so a look-alike
        site cannot relay a key's answer. Browsers allow WebAuthn over plain http only on
        localhost. Default: ["http://localhost:8000"] (`make run`, opened as localhost: at
        http://127.0.0.1:8000 the browser offers no passkeys, since an IP cannot be an RP id)."""
        return list(getattr(settings, "TWOFACTOR_WEBAUTHN_ORIGINS", ["http://localhost:8000"]))

    @property
    def WEBAUTHN_RP_NAME(self) -> str:
        """TWOFACTOR_WEBAUTHN_RP_NAME: the site's name as the browser shows it while a key is
        added. Default: TWOFACTOR_ISSUER."""
        return getattr(settings, "TWOFACTOR_WEBAUTHN_RP_NAME", self.ISSUER)

    @property
    def TRUSTED_BROWSER_DAYS(self) -> int:
        """TWOFACTOR_TRUSTED_BROWSER_DAYS: how long "Don't ask for a code on this browser"
        lasts. Default: 30."""
        return int(getattr(settings, "TWOFACTOR_TRUSTED_BROWSER_DAYS", 30))

    @property
    def TRUSTED_BROWSER_COOKIE_NAME(self) -> str:
        """TWOFACTOR_TRUSTED_BROWSER_COOKIE_NAME: the cookie holding a trusted browser's
        tokens. Default: "__Host-twofactor_trusted" (the prefix makes browsers keep it only
        if it is Secure, for the whole site and no other host: it is always sent so)."""
        return getattr(
            settings, "TWOFACTOR_TRUSTED_BROWSER_COOKIE_NAME", "__Host-twofactor_trusted"
        )

    @property
    def TRUSTED_BROWSER_COOKIE_SECURE(self) -> bool:
        """TWOFACTOR_TRUSTED_BROWSER_COOKIE_SECURE: send that cookie over https only.
        Default: True. A site served over plain http (a development server) turns it off
        together with the "__Host-" prefix: browsers keep neither from an http page."""
        return bool(getattr(settings, "TWOFACTOR_TRUSTED_BROWSER_COOKIE_SECURE", True))

    @property
    def CLIENT_IP(self) -> str:
        """TWOFACTOR_CLIENT_IP: dotted path of a function(request) -> the client's IP address,
        for the record of a trusted browser (a project behind a proxy names its own).
        Default: "" (REMOTE_ADDR)."""
        return getattr(settings, "TWOFACTOR_CLIENT_IP", "")

    @property
    def POLICY_EXEMPT_URLS(self) -> list[str]:
        """TWOFACTOR_POLICY_EXEMPT_URLS: URL names or paths a user past their 2FA deadline
        may still open besides setup (logging out, say). Default: none."""
        return list(getattr(settings, "TWOFACTOR_POLICY_EXEMPT_URLS", []))

    @property
    def SETUP_URL(self) -> str:
        """TWOFACTOR_SETUP_URL: where a user past their 2FA deadline is sent (a URL name or a
        path): a page that offers Enable 2FA. Default: "twofactor:enable"."""
        return getattr(settings, "TWOFACTOR_SETUP_URL", "twofactor:enable")


app_settings = AppSettings()
