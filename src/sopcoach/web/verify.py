"""``GET /verify``: anyone holding a certificate code can check it in a browser, no sign-in, no shell.

The page asks for the code printed on a certificate and answers with
:meth:`~sopcoach.certification.certificates.Verification.message` in the page's language, its days
in the company's time zone (the same days as the PDF): genuine or not, current or why not
(expired, revoked, replaced, recertification due after a clause changed; seed:3.3.1). It shows
what the certificate itself shows (holder, SOP version, score, days) and nothing else; no kernel is
started. A code has a check character, so a mistyped code says so instead of "not genuine".
"""
from __future__ import annotations

from typing import Any

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.base.handlers import JupyterHandler

from ..certification.certificates import verify
from ..records.store import Records
from .identity import _TEMPLATES, PlainErrors, request_lang

#: The longest code text accepted (a code is 17 characters; spaces and hyphens may be added).
MAX_CODE_TEXT = 40

TEXT = {
    "zh-CN": {"title": "验证证书", "intro": "输入证书上印的验证码，查看证书是否真实、是否仍然有效。",
              "code": "验证码", "submit": "验证", "other_lang": "English", "too_long": "验证码最多 {n} 个字符。"},
    "en": {"title": "Verify a certificate", "intro": "Enter the code printed on a certificate to see whether it is "
           "genuine and still current.", "code": "Certificate code", "submit": "Verify", "other_lang": "中文",
           "too_long": "A code has at most {n} characters."},
}


class VerifyHandler(PlainErrors, JupyterHandler):
    """The certificate check page (see the module docstring)."""

    def initialize(self, records: Records, timezone: str = "Asia/Shanghai") -> None:
        self.records = records
        self.timezone = timezone

    @allow_unauthenticated
    def get(self) -> None:
        lang = request_lang(self)
        text = TEXT[lang]
        code = (self.get_argument("code", "") or "").strip()
        verdict: dict[str, Any] | None = None
        status = 200
        if len(code) > MAX_CODE_TEXT:
            verdict, status = {"level": "warning", "message": text["too_long"].format(n=MAX_CODE_TEXT)}, 400
            code = code[:MAX_CODE_TEXT]
        elif code:
            v = verify(self.records, code)
            verdict = {"level": "ok" if v.current else "warning" if v.genuine else "bad",
                       "message": v.message(lang, self.timezone), "status": v.status}
        self.set_status(status)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Frame-Options", "DENY")
        self.set_header("Referrer-Policy", "no-referrer")  # the code stays out of other sites' logs
        self.finish(_TEMPLATES.get_template("verify.html").render(
            t=text, lang=lang, other_lang="en" if lang == "zh-CN" else "zh-CN", code=code, verdict=verdict,
            action=self.base_url + "verify", max_code=MAX_CODE_TEXT))
