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
    "Status": "状態",
    "Stop download": "ダウンロードを中止",
    "Keep downloading": "ダウンロードを続ける",
    "Stop downloading {name}? Its partial files are deleted.": (
        "{name} のダウンロードを中止しますか？途中までのファイルは削除されます。"
    ),
    "This computer's node is part of llmlb: it cannot be deleted while llmlb runs. "
    "To stop it serving, pause serving or delete its models.": (
        "このコンピューターのノードは llmlb の一部のため、llmlb の実行中は削除できません。"
        "提供を止めるには、提供を一時停止するかモデルを削除してください。"
    ),
    "Registered {name}.": "{name} を登録しました。",
    "Registered {name}: its download starts now.": (
        "{name} を登録しました。ダウンロードを開始します。"
    ),
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
