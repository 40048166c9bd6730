"""English and Japanese UI text: follows the system language, switchable by hand."""

from __future__ import annotations

from PySide6.QtCore import QLocale

JA = {
    "Overview": "概要",
    "Models": "モデル",
    "Model Hub": "モデルハブ",
    "Local": "ローカル",
    "Settings": "設定",
    "Search models": "モデルを検索",
    "Register": "登録",
    "Register a model from Hugging Face": "Hugging Face からモデルを登録",
    "Cancel": "キャンセル",
    "Delete": "削除",
    "available": "未登録",
    "registered": "登録済み",
    "downloading": "ダウンロード中",
    "ready": "準備完了",
    "error": "エラー",
    "fits": "動作可",
    "may be slow": "低速の可能性",
    "won't fit": "メモリ不足",
    "Nodes": "ノード",
    "Playground": "プレイグラウンド",
    "Endpoint": "エンドポイント",
    "Copy": "コピー",
    "Open": "開く",
    "Copy endpoint URL": "エンドポイント URL をコピー",
    "Pause serving": "提供を一時停止",
    "Resume serving": "提供を再開",
    "Quit": "終了",
    "Save": "保存",
    "Language": "言語",
    "Resume": "再開",
    "Serving is paused": "提供は一時停止中です",
    "Serving is paused — /v1 requests are refused until you resume.": (
        "提供は一時停止中です — 再開するまで /v1 へのリクエストは拒否されます。"
    ),
    "Port": "ポート",
    "In use now (set for this run); saved: {port}": (
        "現在使用中（今回の起動で指定）; 保存値: {port}"
    ),
    "Restart now": "今すぐ再起動",
    "Saved.": "保存しました。",
    "Saved. Restart llmlb to apply: ": "保存しました。反映するには llmlb を再起動してください: ",
    "Serve on the LAN": "LAN で提供",
    "Data folder": "データフォルダー",
    "Unload idle models after": "未使用モデルのアンロードまで",
}

_language = "en"


def set_language(choice: str) -> str:
    """`system`, `en` or `ja`; returns the language in force."""
    global _language
    if choice == "system":
        choice = "ja" if QLocale.system().language() == QLocale.Language.Japanese else "en"
    _language = choice if choice in {"en", "ja"} else "en"
    return _language


def tr(text: str) -> str:
    """The text in the current language."""
    return JA.get(text, text) if _language == "ja" else text
