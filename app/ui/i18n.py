"""English and Japanese UI text: follows the system language, switchable by hand."""

from __future__ import annotations

from PySide6.QtCore import QLocale

JA = {
    "Overview": "概要",
    "Thinking…": "思考中…",
    "Thought for {seconds} s": "{seconds} 秒間思考",
    "Thought": "思考",
    "Models": "モデル",
    "Model Hub": "モデルハブ",
    "Local": "ローカル",
    "Settings": "設定",
    "Search models": "モデルを検索",
    "Register": "登録",
    "Register a model from Hugging Face": "Hugging Face からモデルを登録",
    "Cancel": "キャンセル",
    "Delete": "削除",
    "Retry": "再試行",
    "available": "未登録",
    "registered": "登録済み",
    "downloading": "ダウンロード中",
    "ready": "準備完了",
    "error": "エラー",
    "fits": "動作可",
    "may be slow": "低速の可能性",
    "won't fit": "メモリ不足",
    "fits on GPU": "GPU で動作可",
    "({n}k here)": "(ここでは {n}k)",
    "fits in RAM, slower": "RAM で動作（低速）",
    "needs {need} of memory; this machine has {have}": (
        "必要なメモリ {need}、このマシンには {have}"
    ),
    "{ram} of memory": "メモリ {ram}",
    "{device} ({memory}) and {ram} of RAM": "{device}（{memory}）と RAM {ram}",
    "Fits on: {hosts}": "動作するノード: {hosts}",
    "Fits on no node": "どのノードにも収まりません",
    "{free} free of {total}": "{total} 中 {free} 空き",
    "{n}% busy": "使用率 {n}%",
    "none (CPU)": "なし（CPU）",
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
    "Nodes online": "オンラインのノード",
    "Models registered": "登録済みモデル",
    "Models ready": "準備完了のモデル",
    "Downloading": "ダウンロード中",
    "how to call the endpoint": "エンドポイントの呼び出し方",
    "API keys…": "API キー…",
    "Point any OpenAI client at the endpoint above, for example:": (
        "OpenAI 互換クライアントで上のエンドポイントを指定してください。例:"
    ),
    "/v1 needs an API key: use one of your API keys (Settings → API keys), for example:": (
        "/v1 には API キーが必要です。お持ちの API キー（設定 → API キー）を使ってください。例:"
    ),
    "/v1 needs an API key and none exists yet: create one in Settings → API keys, "
    "then for example:": (
        "/v1 には API キーが必要ですが、まだありません。設定 → API キーで作成してから、例:"
    ),
    "No model yet. Pick one in the Model Hub: it downloads and is ready to use here.": (
        "モデルがまだありません。モデルハブで選ぶとダウンロードされ、ここで使えるようになります。"
    ),
    "Get a model…": "モデルを入手…",
    "Serve on the LAN (other machines may connect)": "LAN で提供する（他のマシンから接続可能）",
    "On the LAN, /v1 needs an API key.": "LAN では /v1 に API キーが必要です。",
    "On the LAN, /v1 is locked to API keys and none exists yet: "
    "every tool gets 401 until it sends one.": (
        "LAN では /v1 は API キー必須ですが、キーがまだありません。"
        "キーを送るまで、どのツールも 401 になります。"
    ),
    "Create an API key": "API キーを作成",
    "LAN clients": "LAN クライアント",
    "API keys (needed by /v1 once one exists, or on the LAN)": (
        "API キー（1 つでもあるか LAN で提供中なら /v1 に必要）"
    ),
    "new API key": "新しい API キー",
    "copy the new API key": "新しい API キーをコピー",
    "never used": "未使用",
    "used just now": "たった今使用",
    "used {n} min ago": "{n} 分前に使用",
    "used {n} h ago": "{n} 時間前に使用",
    "used on {date}": "{date} に使用",
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
    "Select all": "すべて選択",
    "The model returned an empty answer.": "モデルの回答は空でした。",
    "The model spent its {n} tokens thinking and gave no answer: raise max and ask again.": (
        "モデルは {n} トークンをすべて思考に使い、回答がありません。"
        "max を増やして再試行してください。"
    ),
    # GPU layers (per model)
    "GPU layers": "GPU レイヤー",
    "GPU layers and context…": "GPU レイヤーとコンテキスト…",
    "GPU layers — {name}": "GPU レイヤー — {name}",
    "right-click to change": "右クリックで変更",
    "Auto": "自動",
    "All layers": "全レイヤー",
    "CPU only": "CPU のみ",
    "Context: what the model was trained for, within the memory (the node's setting)": (
        "コンテキスト: モデルの学習時の長さ (メモリの範囲内、ノードの設定)"
    ),
    "tokens per conversation": "トークン / 会話",
    "context size in tokens": "コンテキストのトークン数",
    "1 layer": "1 レイヤー",
    "{n} layers": "{n} レイヤー",
    "How many of {name}'s layers every node offloads to its GPU. "
    "The model loads again with the new value on its next use.": (
        "{name} のレイヤーのうち、各ノードが GPU に載せる数です。"
        "新しい値は次に使うときにモデルを読み込み直して反映されます。"
    ),
    "Auto: as many as fit the GPU's free memory (the node's setting)": (
        "自動: GPU の空きメモリに収まるだけ（ノードの設定）"
    ),
    "All layers on the GPU": "全レイヤーを GPU に",
    "This many layers:": "レイヤー数を指定:",
    "number of GPU layers": "GPU レイヤー数",
    "Earlier messages are not sent: they do not fit the model's {context} context": (
        "以前のメッセージは送信されません: モデルの {context} コンテキストに収まりません"
    ),
    "{name} is cut to fit the model's {context} context: its first {sent} of {total} "
    "characters are sent": (
        "{name} はモデルの {context} コンテキストに収まるよう切り詰められました: "
        "{total} 文字のうち最初の {sent} 文字を送信します"
    ),
    "This message is too long for the model's {context} context: shorten it and send again.": (
        "このメッセージはモデルの {context} コンテキストには長すぎます。"
        "短くしてもう一度送信してください。"
    ),
    # Managing a remote server (Settings → Server, llmlb --connect)
    "its TLS certificate is not the one the fingerprint names": (
        "TLS 証明書がフィンガープリントの示すものと異なります"
    ),
    "its TLS certificate is not trusted (give its fingerprint)": (
        "TLS 証明書が信頼されていません（フィンガープリントを指定してください）"
    ),
    "https only: the sha256 `llmlb serve --tls` prints for its certificate": (
        "https のみ: `llmlb serve --tls` が表示する証明書の sha256"
    ),
    "TLS certificate fingerprint": "TLS 証明書のフィンガープリント",
    "Certificate": "証明書",
    "Run llmlb on this computer instead? Settings → Server connects to a server again.": (
        "代わりにこのコンピューターで llmlb を動かしますか？"
        "設定 → サーバーから再びサーバーに接続できます。"
    ),
    "Over http the admin token crosses the network unencrypted: on a network you do not "
    "trust, run the server with `llmlb serve --tls` and connect with https.": (
        "http では管理トークンが暗号化されずにネットワークを通ります。"
        "信頼できないネットワークでは、サーバーを `llmlb serve --tls` で起動し、"
        "https で接続してください。"
    ),
    "Could not reach {url}: {why}.": "{url} に接続できませんでした: {why}。",
    "Connect to a server": "サーバーに接続",
    "Manage a balancer that runs on another machine (`llmlb serve`). Nothing runs on this "
    "computer while this window manages it.": (
        "別のマシンで動いているバランサー（`llmlb serve`）を管理します。"
        "このウィンドウが管理している間、このコンピューターでは何も動作しません。"
    ),
    "server address": "サーバーのアドレス",
    "the server's admin token (llmlb-admin-…)": "サーバーの管理トークン（llmlb-admin-…）",
    "admin token": "管理トークン",
    "Server": "サーバー",
    "Admin token": "管理トークン",
    "connection test result": "接続テストの結果",
    "Test the connection": "接続をテスト",
    "Connect": "接続",
    "This window manages the balancer on this computer.": (
        "このウィンドウはこのコンピューターのバランサーを管理しています。"
    ),
    "Connect to a server…": "サーバーに接続…",
    "Use this computer": "このコンピューターを使う",
    "Run the balancer and its node on this computer again": (
        "このコンピューターでバランサーとノードを再び動かします"
    ),
    "no answer in time": "時間内に応答がありません",
    "Enter the server's admin token.": "サーバーの管理トークンを入力してください。",
    "no answer": "応答がありません",
    "Connecting to {url}…": "{url} に接続中…",
    "This window manages the balancer at {url}. The settings above are this computer's and "
    "do not change that server.": (
        "このウィンドウは {url} のバランサーを管理しています。"
        "上の設定はこのコンピューターのもので、そのサーバーには影響しません。"
    ),
    "{url} answered {status}: {reason}": "{url} が {status} を返しました: {reason}",
    "Connected: {url} took the admin token.": (
        "接続しました: {url} は管理トークンを受け付けました。"
    ),
    "{url} refused the admin token: check it (it is in the file admin_token in that server's "
    "data folder).": (
        "{url} は管理トークンを拒否しました。トークンを確認してください"
        "（そのサーバーのデータフォルダーの admin_token ファイルにあります）。"
    ),
    "{url} answered, but it is not an llmlb balancer (check the port).": (
        "{url} は応答しましたが、llmlb のバランサーではありません（ポートを確認してください）。"
    ),
    "llmlb cannot connect": "llmlb は接続できません",
    "This computer's balancer only (not running now)": (
        "このコンピューターのバランサー専用です（現在は動作していません）"
    ),
    "{n} s": "{n} 秒",
    "{n} min": "{n} 分",
    "{h} h {m} min": "{h} 時間 {m} 分",
    "{percent}% of {total}": "{total} 中 {percent}%",
    "{time} left": "残り {time}",
    "retrying now: {reason}": "まもなく再試行: {reason}",
    "retrying in {time}: {reason}": "{time}後に再試行: {reason}",
    "Help: open the README": "ヘルプ: README を開く",
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
