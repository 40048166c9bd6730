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
    # Playground
    "System prompt (optional)": "システムプロンプト（任意）",
    "seed": "シード",
    "stop words, comma-separated": "停止語（カンマ区切り）",
    "temp": "温度",
    "top p": "top p",
    "max": "最大",
    "Title": "タイトル",
    "Model": "モデル",
    "System": "システム",
    "Parameters": "パラメーター",
    "1 node": "1 ノード",
    "{n} nodes": "{n} ノード",
    "Message (Enter sends, Shift+Enter new line, Esc stops)": (
        "メッセージ（Enter で送信、Shift+Enter で改行、Esc で停止）"
    ),
    "Attach…": "添付…",
    "Send": "送信",
    "Stop": "停止",
    "No model is ready yet: register one in the Model Hub.": (
        "準備完了のモデルがありません。モデルハブで登録してください。"
    ),
    "attached file": "添付ファイル",
    "remove": "削除",
    "Remove this file": "このファイルを外す",
    "Seed, stop": "シード・停止語",
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
