<?xml version='1.0' encoding='utf-8'?>
<TS version="2.1" language="ja_JP">
<context>
    <name />
    <message>
        <source>llmlb cannot connect</source>
        <translation>llmlb は接続できません</translation>
    </message>
    <message>
        <source>Run llmlb on this computer instead? Settings → Server connects to a server again.</source>
        <translation>代わりにこのコンピューターで llmlb を動かしますか？設定 → サーバーから再びサーバーに接続できます。</translation>
    </message>
    <message>
        <source>Use this computer</source>
        <translation>このコンピューターを使う</translation>
    </message>
    <message>
        <source>Quit</source>
        <translation>終了</translation>
    </message>
    <message>
        <source>The model returned an empty answer.</source>
        <translation>モデルの回答は空でした。</translation>
    </message>
    <message>
        <source>The model spent its {n} tokens thinking and gave no answer: raise max and ask again.</source>
        <translation>モデルは {n} トークンをすべて思考に使い、回答がありません。max を増やして再試行してください。</translation>
    </message>
    <message>
        <source>message</source>
        <translation>メッセージ</translation>
    </message>
    <message>
        <source>Message (Enter sends, Shift+Enter new line, Esc stops)</source>
        <translation>メッセージ（Enter で送信、Shift+Enter で改行、Esc で停止）</translation>
    </message>
    <message>
        <source>Attach…</source>
        <translation>添付…</translation>
    </message>
    <message>
        <source>Send</source>
        <translation>送信</translation>
    </message>
    <message>
        <source>No model is ready yet: register one in the Model Hub.</source>
        <translation>準備完了のモデルがありません。モデルハブで登録してください。</translation>
    </message>
    <message>
        <source>Stop</source>
        <translation>停止</translation>
    </message>
    <message>
        <source>System prompt (optional)</source>
        <translation>システムプロンプト（任意）</translation>
    </message>
    <message>
        <source>seed</source>
        <translation>シード</translation>
    </message>
    <message>
        <source>stop words, comma-separated</source>
        <translation>停止語（カンマ区切り）</translation>
    </message>
    <message>
        <source>temp</source>
        <translation>温度</translation>
    </message>
    <message>
        <source>top p</source>
        <translation>top p</translation>
    </message>
    <message>
        <source>conversation title</source>
        <translation>会話のタイトル</translation>
    </message>
    <message>
        <source>model</source>
        <translation>モデル</translation>
    </message>
    <message>
        <source>system prompt</source>
        <translation>システムプロンプト</translation>
    </message>
    <message>
        <source>temperature</source>
        <translation>温度</translation>
    </message>
    <message>
        <source>max tokens</source>
        <translation>最大トークン数</translation>
    </message>
    <message>
        <source>stop sequences</source>
        <translation>停止シーケンス</translation>
    </message>
    <message>
        <source>max</source>
        <translation>最大</translation>
    </message>
    <message>
        <source>Title</source>
        <translation>タイトル</translation>
    </message>
    <message>
        <source>Model</source>
        <translation>モデル</translation>
    </message>
    <message>
        <source>System</source>
        <translation>システム</translation>
    </message>
    <message>
        <source>Parameters</source>
        <translation>パラメーター</translation>
    </message>
    <message>
        <source>Seed, stop</source>
        <translation>シード・停止語</translation>
    </message>
    <message>
        <source>1 node</source>
        <translation>1 ノード</translation>
    </message>
    <message>
        <source>{n} nodes</source>
        <translation>{n} ノード</translation>
    </message>
    <message>
        <source>Thinking…</source>
        <translation>思考中…</translation>
    </message>
    <message>
        <source>Thought for {seconds} s</source>
        <translation>{seconds} 秒間思考</translation>
    </message>
    <message>
        <source>Thought</source>
        <translation>思考</translation>
    </message>
    <message>
        <source>Copy</source>
        <translation>コピー</translation>
    </message>
    <message>
        <source>Select all</source>
        <translation>すべて選択</translation>
    </message>
    <message>
        <source>stopped</source>
        <translation>停止</translation>
    </message>
    <message>
        <source>interrupted</source>
        <translation>中断</translation>
    </message>
    <message>
        <source>{n} tokens</source>
        <translation>{n} トークン</translation>
    </message>
    <message>
        <source>first token {ms} ms</source>
        <translation>最初のトークンまで {ms} ms</translation>
    </message>
    <message>
        <source>node {node}</source>
        <translation>ノード {node}</translation>
    </message>
    <message>
        <source>You</source>
        <translation>あなた</translation>
    </message>
    <message>
        <source>Assistant</source>
        <translation>アシスタント</translation>
    </message>
    <message>
        <source>retry this answer</source>
        <translation>この回答を再生成</translation>
    </message>
    <message>
        <source>Copy code</source>
        <translation>コードをコピー</translation>
    </message>
    <message>
        <source>copy the code blocks of this message</source>
        <translation>このメッセージのコードブロックをコピー</translation>
    </message>
    <message>
        <source>attached file {name}</source>
        <translation>添付ファイル {name}</translation>
    </message>
    <message>
        <source>remove {name}</source>
        <translation>{name} を外す</translation>
    </message>
    <message>
        <source>Remove this file</source>
        <translation>このファイルを外す</translation>
    </message>
    <message>
        <source>Over http the admin token crosses the network unencrypted: on a network you do not trust, run the server with `llmlb serve --tls` and connect with https.</source>
        <translation>http では管理トークンが暗号化されずにネットワークを通ります。信頼できないネットワークでは、サーバーを `llmlb serve --tls` で起動し、https で接続してください。</translation>
    </message>
    <message>
        <source>its TLS certificate is not the one the fingerprint names</source>
        <translation>TLS 証明書がフィンガープリントの示すものと異なります</translation>
    </message>
    <message>
        <source>its TLS certificate is not trusted (give its fingerprint)</source>
        <translation>TLS 証明書が信頼されていません（フィンガープリントを指定してください）</translation>
    </message>
    <message>
        <source>no answer in time</source>
        <translation>時間内に応答がありません</translation>
    </message>
    <message>
        <source>no answer</source>
        <translation>応答がありません</translation>
    </message>
    <message>
        <source>Could not reach {url}: {why}.</source>
        <translation>{url} に接続できませんでした: {why}。</translation>
    </message>
    <message>
        <source>{url} refused the admin token: check it (it is in the file admin_token in that server's data folder).</source>
        <translation>{url} は管理トークンを拒否しました。トークンを確認してください（そのサーバーのデータフォルダーの admin_token ファイルにあります）。</translation>
    </message>
    <message>
        <source>{url} answered, but it is not an llmlb balancer (check the port).</source>
        <translation>{url} は応答しましたが、llmlb のバランサーではありません（ポートを確認してください）。</translation>
    </message>
    <message>
        <source>{url} answered {status}: {reason}</source>
        <translation>{url} が {status} を返しました: {reason}</translation>
    </message>
    <message>
        <source>Connect to a server</source>
        <translation>サーバーに接続</translation>
    </message>
    <message>
        <source>Manage a balancer that runs on another machine (`llmlb serve`). Nothing runs on this computer while this window manages it.</source>
        <translation>別のマシンで動いているバランサー（`llmlb serve`）を管理します。このウィンドウが管理している間、このコンピューターでは何も動作しません。</translation>
    </message>
    <message>
        <source>server address</source>
        <translation>サーバーのアドレス</translation>
    </message>
    <message>
        <source>the server's admin token (llmlb-admin-…)</source>
        <translation>サーバーの管理トークン（llmlb-admin-…）</translation>
    </message>
    <message>
        <source>admin token</source>
        <translation>管理トークン</translation>
    </message>
    <message>
        <source>https only: the sha256 `llmlb serve --tls` prints for its certificate</source>
        <translation>https のみ: `llmlb serve --tls` が表示する証明書の sha256</translation>
    </message>
    <message>
        <source>TLS certificate fingerprint</source>
        <translation>TLS 証明書のフィンガープリント</translation>
    </message>
    <message>
        <source>Server</source>
        <translation>サーバー</translation>
    </message>
    <message>
        <source>Admin token</source>
        <translation>管理トークン</translation>
    </message>
    <message>
        <source>Certificate</source>
        <translation>証明書</translation>
    </message>
    <message>
        <source>connection test result</source>
        <translation>接続テストの結果</translation>
    </message>
    <message>
        <source>Test the connection</source>
        <translation>接続をテスト</translation>
    </message>
    <message>
        <source>Connect</source>
        <translation>接続</translation>
    </message>
    <message>
        <source>Enter the server's admin token.</source>
        <translation>サーバーの管理トークンを入力してください。</translation>
    </message>
    <message>
        <source>Connecting to {url}…</source>
        <translation>{url} に接続中…</translation>
    </message>
    <message>
        <source>Connected: {url} took the admin token.</source>
        <translation>接続しました: {url} は管理トークンを受け付けました。</translation>
    </message>
    <message>
        <source>This window manages the balancer at {url}. The settings above are this computer's and do not change that server.</source>
        <translation>このウィンドウは {url} のバランサーを管理しています。上の設定はこのコンピューターのもので、そのサーバーには影響しません。</translation>
    </message>
    <message>
        <source>This window manages the balancer on this computer.</source>
        <translation>このウィンドウはこのコンピューターのバランサーを管理しています。</translation>
    </message>
    <message>
        <source>Connect to a server…</source>
        <translation>サーバーに接続…</translation>
    </message>
    <message>
        <source>Run the balancer and its node on this computer again</source>
        <translation>このコンピューターでバランサーとノードを再び動かします</translation>
    </message>
    <message>
        <source>{n} s</source>
        <translation>{n} 秒</translation>
    </message>
    <message>
        <source>{n} min</source>
        <translation>{n} 分</translation>
    </message>
    <message>
        <source>{h} h {m} min</source>
        <translation>{h} 時間 {m} 分</translation>
    </message>
    <message>
        <source>{percent}% of {total}</source>
        <translation>{total} 中 {percent}%</translation>
    </message>
    <message>
        <source>{time} left</source>
        <translation>残り {time}</translation>
    </message>
    <message>
        <source>retrying now: {reason}</source>
        <translation>まもなく再試行: {reason}</translation>
    </message>
    <message>
        <source>retrying in {time}: {reason}</source>
        <translation>{time}後に再試行: {reason}</translation>
    </message>
    <message>
        <source>Point any OpenAI client at the endpoint above, for example:</source>
        <translation>OpenAI 互換クライアントで上のエンドポイントを指定してください。例:</translation>
    </message>
    <message>
        <source>/v1 needs an API key: use one of your API keys (Settings → API keys), for example:</source>
        <translation>/v1 には API キーが必要です。お持ちの API キー（設定 → API キー）を使ってください。例:</translation>
    </message>
    <message>
        <source>/v1 needs an API key and none exists yet: create one in Settings → API keys, then for example:</source>
        <translation>/v1 には API キーが必要ですが、まだありません。設定 → API キーで作成してから、例:</translation>
    </message>
    <message>
        <source>{free} free of {total}</source>
        <translation>{total} 中 {free} 空き</translation>
    </message>
    <message>
        <source>{n}% busy</source>
        <translation>使用率 {n}%</translation>
    </message>
    <message>
        <source>none (CPU)</source>
        <translation>なし（CPU）</translation>
    </message>
    <message>
        <source>fit unknown</source>
        <translation>適合不明</translation>
    </message>
    <message>
        <source>needs {need} of memory; no node of the server has reported its memory yet</source>
        <translation>{need} のメモリーが必要です。サーバーのノードはまだメモリーを報告していません</translation>
    </message>
    <message>
        <source>fits on GPU</source>
        <translation>GPU で動作可</translation>
    </message>
    <message>
        <source>fits in RAM, slower</source>
        <translation>RAM で動作（低速）</translation>
    </message>
    <message>
        <source>{device} ({memory}) and {ram} of RAM</source>
        <translation>{device}（{memory}）と RAM {ram}</translation>
    </message>
    <message>
        <source>{ram} of memory</source>
        <translation>メモリ {ram}</translation>
    </message>
    <message>
        <source>needs {need} of memory; the server's node has {have}</source>
        <translation>{need} のメモリーが必要です。サーバーのノードには {have} があります</translation>
    </message>
    <message>
        <source>needs {need} of memory; this machine has {have}</source>
        <translation>必要なメモリ {need}、このマシンには {have}</translation>
    </message>
    <message>
        <source>Fits on no node</source>
        <translation>どのノードにも収まりません</translation>
    </message>
    <message>
        <source>Fits on: {hosts}</source>
        <translation>動作するノード: {hosts}</translation>
    </message>
    <message>
        <source>Auto</source>
        <translation>自動</translation>
    </message>
    <message>
        <source>All layers</source>
        <translation>全レイヤー</translation>
    </message>
    <message>
        <source>CPU only</source>
        <translation>CPU のみ</translation>
    </message>
    <message>
        <source>1 layer</source>
        <translation>1 レイヤー</translation>
    </message>
    <message>
        <source>{n} layers</source>
        <translation>{n} レイヤー</translation>
    </message>
    <message>
        <source>GPU layers — {name}</source>
        <translation>GPU レイヤー — {name}</translation>
    </message>
    <message>
        <source>How many of {name}'s layers every node offloads to its GPU. The model loads again with the new value on its next use.</source>
        <translation>{name} のレイヤーのうち、各ノードが GPU に載せる数です。新しい値は次に使うときにモデルを読み込み直して反映されます。</translation>
    </message>
    <message>
        <source>Auto: as many as fit the GPU's free memory (the node's setting)</source>
        <translation>自動: GPU の空きメモリに収まるだけ（ノードの設定）</translation>
    </message>
    <message>
        <source>All layers on the GPU</source>
        <translation>全レイヤーを GPU に</translation>
    </message>
    <message>
        <source>This many layers:</source>
        <translation>レイヤー数を指定:</translation>
    </message>
    <message>
        <source>number of GPU layers</source>
        <translation>GPU レイヤー数</translation>
    </message>
    <message>
        <source>Context: what the model was trained for, within the memory (the node's setting)</source>
        <translation>コンテキスト: モデルの学習時の長さ (メモリの範囲内、ノードの設定)</translation>
    </message>
    <message>
        <source>tokens per conversation</source>
        <translation>トークン / 会話</translation>
    </message>
    <message>
        <source>context size in tokens</source>
        <translation>コンテキストのトークン数</translation>
    </message>
    <message>
        <source>Save</source>
        <translation>保存</translation>
    </message>
    <message>
        <source>Cancel</source>
        <translation>キャンセル</translation>
    </message>
    <message>
        <source>Search models</source>
        <translation>モデルを検索</translation>
    </message>
    <message>
        <source>Register a model from Hugging Face</source>
        <translation>Hugging Face からモデルを登録</translation>
    </message>
    <message>
        <source>Status</source>
        <translation>状態</translation>
    </message>
    <message>
        <source>Loading the catalog…</source>
        <translation>カタログを読み込み中…</translation>
    </message>
    <message>
        <source>No model matches your search.</source>
        <translation>検索に一致するモデルはありません。</translation>
    </message>
    <message>
        <source>Stop download</source>
        <translation>ダウンロードを中止</translation>
    </message>
    <message>
        <source>Stop downloading {name}? Its partial files are deleted.</source>
        <translation>{name} のダウンロードを中止しますか？途中までのファイルは削除されます。</translation>
    </message>
    <message>
        <source>Keep downloading</source>
        <translation>ダウンロードを続ける</translation>
    </message>
    <message>
        <source>Delete model</source>
        <translation>モデルを削除</translation>
    </message>
    <message>
        <source>Delete {name}? Every node deletes its files.</source>
        <translation>{name} を削除しますか？すべてのノードがそのファイルを削除します。</translation>
    </message>
    <message>
        <source>Registered {name}.</source>
        <translation>{name} を登録しました。</translation>
    </message>
    <message>
        <source>Registered {name}: its download starts now.</source>
        <translation>{name} を登録しました。ダウンロードを開始します。</translation>
    </message>
    <message>
        <source>Progress</source>
        <translation>進捗</translation>
    </message>
    <message>
        <source>Size</source>
        <translation>サイズ</translation>
    </message>
    <message>
        <source>Memory</source>
        <translation>メモリ</translation>
    </message>
    <message>
        <source>Node</source>
        <translation>ノード</translation>
    </message>
    <message>
        <source>Path</source>
        <translation>パス</translation>
    </message>
    <message>
        <source>No model registered yet: pick one in the Model Hub.</source>
        <translation>まだモデルが登録されていません。モデルハブから選んでください。</translation>
    </message>
    <message>
        <source>registered models</source>
        <translation>登録済みモデル</translation>
    </message>
    <message>
        <source>{name}
GPU layers: {layers} (right-click to change)</source>
        <translation>{name}
GPU レイヤー: {layers}（右クリックで変更）</translation>
    </message>
    <message>
        <source>Delete</source>
        <translation>削除</translation>
    </message>
    <message>
        <source>Delete {name}</source>
        <translation>{name} を削除</translation>
    </message>
    <message>
        <source>Retry {name}</source>
        <translation>{name} を再試行</translation>
    </message>
    <message>
        <source>Retry</source>
        <translation>再試行</translation>
    </message>
    <message>
        <source>GPU layers and context…</source>
        <translation>GPU レイヤーとコンテキスト…</translation>
    </message>
    <message>
        <source>Overview</source>
        <translation>概要</translation>
    </message>
    <message>
        <source>Playground</source>
        <translation>プレイグラウンド</translation>
    </message>
    <message>
        <source>Nodes</source>
        <translation>ノード</translation>
    </message>
    <message>
        <source>Logs</source>
        <translation>ログ</translation>
    </message>
    <message>
        <source>Settings</source>
        <translation>設定</translation>
    </message>
    <message>
        <source>Serving is paused — /v1 requests are refused until you resume.</source>
        <translation>提供は一時停止中です — 再開するまで /v1 へのリクエストは拒否されます。</translation>
    </message>
    <message>
        <source>Resume</source>
        <translation>再開</translation>
    </message>
    <message>
        <source>Serving is paused</source>
        <translation>提供は一時停止中です</translation>
    </message>
    <message>
        <source>Resume serving</source>
        <translation>提供を再開</translation>
    </message>
    <message>
        <source>sections</source>
        <translation>セクション</translation>
    </message>
    <message>
        <source>Model Hub</source>
        <translation>モデルハブ</translation>
    </message>
    <message>
        <source>Local</source>
        <translation>ローカル</translation>
    </message>
    <message>
        <source>Lost connection to the balancer: {reason}. Retrying in the background…</source>
        <translation>バランサーとの接続が切れました: {reason}。バックグラウンドで再接続しています…</translation>
    </message>
    <message>
        <source>Register</source>
        <translation>登録</translation>
    </message>
    <message>
        <source>Register {name}</source>
        <translation>{name} を登録</translation>
    </message>
    <message>
        <source>Cancel {name}</source>
        <translation>{name} をキャンセル</translation>
    </message>
    <message>
        <source>Quantization</source>
        <translation>量子化</translation>
    </message>
    <message>
        <source>Smaller quantizations need less memory; larger ones answer better.</source>
        <translation>小さい量子化はメモリーが少なくて済み、大きい量子化はより良い回答をします。</translation>
    </message>
    <message>
        <source>{size} file</source>
        <translation>ファイル {size}</translation>
    </message>
    <message>
        <source>{size} memory</source>
        <translation>メモリ {size}</translation>
    </message>
    <message>
        <source>{n}k context</source>
        <translation>コンテキスト {n}k</translation>
    </message>
    <message>
        <source>({n}k here)</source>
        <translation>(ここでは {n}k)</translation>
    </message>
    <message>
        <source>OpenAI endpoint URL</source>
        <translation>OpenAI エンドポイント URL</translation>
    </message>
    <message>
        <source>Copy endpoint URL</source>
        <translation>エンドポイント URL をコピー</translation>
    </message>
    <message>
        <source>Endpoint</source>
        <translation>エンドポイント</translation>
    </message>
    <message>
        <source>Nodes online</source>
        <translation>オンラインのノード</translation>
    </message>
    <message>
        <source>Models ready</source>
        <translation>準備完了のモデル</translation>
    </message>
    <message>
        <source>Requests, last hour</source>
        <translation>リクエスト数（直近 1 時間）</translation>
    </message>
    <message>
        <source>Error rate, last hour</source>
        <translation>エラー率（直近 1 時間）</translation>
    </message>
    <message>
        <source>Median latency</source>
        <translation>レイテンシ中央値</translation>
    </message>
    <message>
        <source>Tokens/s now</source>
        <translation>現在の トークン/秒</translation>
    </message>
    <message>
        <source>how to call the endpoint</source>
        <translation>エンドポイントの呼び出し方</translation>
    </message>
    <message>
        <source>API keys…</source>
        <translation>API キー…</translation>
    </message>
    <message>
        <source>Requests a minute</source>
        <translation>1 分あたりのリクエスト数</translation>
    </message>
    <message>
        <source>Time to first token (ms)</source>
        <translation>最初のトークンまでの時間 (ms)</translation>
    </message>
    <message>
        <source>Error rate (%)</source>
        <translation>エラー率 (%)</translation>
    </message>
    <message>
        <source>Tokens per second</source>
        <translation>毎秒トークン数</translation>
    </message>
    <message>
        <source>GPU use, mean over nodes (%)</source>
        <translation>GPU 使用率、ノード平均 (%)</translation>
    </message>
    <message>
        <source>No model yet. Pick one in the Model Hub: it downloads and is ready to use here.</source>
        <translation>モデルがまだありません。モデルハブで選ぶとダウンロードされ、ここで使えるようになります。</translation>
    </message>
    <message>
        <source>Get a model…</source>
        <translation>モデルを入手…</translation>
    </message>
    <message>
        <source>Traffic figures are unavailable: {reason}</source>
        <translation>トラフィックの数値を取得できません: {reason}</translation>
    </message>
    <message>
        <source>Serve on the LAN (other machines may connect)</source>
        <translation>LAN で提供する（他のマシンから接続可能）</translation>
    </message>
    <message>
        <source>On the LAN, /v1 needs an API key.</source>
        <translation>LAN では /v1 に API キーが必要です。</translation>
    </message>
    <message>
        <source>Language</source>
        <translation>言語</translation>
    </message>
    <message>
        <source>In use now (set for this run); saved: {port}</source>
        <translation>現在使用中（今回の起動で指定）; 保存値: {port}</translation>
    </message>
    <message>
        <source>Port</source>
        <translation>ポート</translation>
    </message>
    <message>
        <source>Follow the system</source>
        <translation>システムに従う</translation>
    </message>
    <message>
        <source>Serve on the LAN</source>
        <translation>LAN で提供</translation>
    </message>
    <message>
        <source>Data folder</source>
        <translation>データフォルダー</translation>
    </message>
    <message>
        <source>Unload idle models after</source>
        <translation>未使用モデルのアンロードまで</translation>
    </message>
    <message>
        <source>The port of the OpenAI-compatible endpoint</source>
        <translation>OpenAI 互換エンドポイントのポート</translation>
    </message>
    <message>
        <source>The folder for the database, logs and model files</source>
        <translation>データベース、ログ、モデルファイルを置くフォルダー</translation>
    </message>
    <message>
        <source> min</source>
        <translation> 分</translation>
    </message>
    <message>
        <source>How long an unused model stays loaded in memory</source>
        <translation>使われていないモデルをメモリに残しておく時間</translation>
    </message>
    <message>
        <source>Start llmlb when I log in</source>
        <translation>ログイン時に llmlb を起動する</translation>
    </message>
    <message>
        <source>Network</source>
        <translation>ネットワーク</translation>
    </message>
    <message>
        <source>Start at login</source>
        <translation>ログイン時に起動</translation>
    </message>
    <message>
        <source>Restart now</source>
        <translation>今すぐ再起動</translation>
    </message>
    <message>
        <source>This computer's balancer only (not running now)</source>
        <translation>このコンピューターのバランサー専用です（現在は動作していません）</translation>
    </message>
    <message>
        <source>Help: open the README</source>
        <translation>ヘルプ: README を開く</translation>
    </message>
    <message>
        <source>Cluster</source>
        <translation>クラスター</translation>
    </message>
    <message>
        <source>join token</source>
        <translation>参加トークン</translation>
    </message>
    <message>
        <source>copy the join token</source>
        <translation>参加トークンをコピー</translation>
    </message>
    <message>
        <source>New token</source>
        <translation>新しいトークン</translation>
    </message>
    <message>
        <source>New join token</source>
        <translation>新しい参加トークン</translation>
    </message>
    <message>
        <source>Make a new join token? Nodes that already joined keep working; new ones need the new token.</source>
        <translation>新しい参加トークンを作りますか？参加済みのノードはそのまま動きますが、新しいノードには新しいトークンが必要です。</translation>
    </message>
    <message>
        <source>Join token:</source>
        <translation>参加トークン:</translation>
    </message>
    <message>
        <source>On the LAN, /v1 is locked to API keys and none exists yet: every tool gets 401 until it sends one.</source>
        <translation>LAN では /v1 は API キー必須ですが、キーがまだありません。キーを送るまで、どのツールも 401 になります。</translation>
    </message>
    <message>
        <source>Create an API key</source>
        <translation>API キーを作成</translation>
    </message>
    <message>
        <source>LAN clients</source>
        <translation>LAN クライアント</translation>
    </message>
    <message>
        <source>API keys (needed by /v1 once one exists, or on the LAN)</source>
        <translation>API キー（1 つでもあるか LAN で提供中なら /v1 に必要）</translation>
    </message>
    <message>
        <source>API keys</source>
        <translation>API キー</translation>
    </message>
    <message>
        <source>name of the new key (e.g. my editor)</source>
        <translation>新しいキーの名前（例: エディター用）</translation>
    </message>
    <message>
        <source>new API key name</source>
        <translation>新しい API キーの名前</translation>
    </message>
    <message>
        <source>Create key</source>
        <translation>キーを作成</translation>
    </message>
    <message>
        <source>Revoke</source>
        <translation>無効化</translation>
    </message>
    <message>
        <source>new API key</source>
        <translation>新しい API キー</translation>
    </message>
    <message>
        <source>copy the new API key</source>
        <translation>新しい API キーをコピー</translation>
    </message>
    <message>
        <source>Give the key a name first.</source>
        <translation>先にキーの名前を入力してください。</translation>
    </message>
    <message>
        <source>New key “{name}”: {key}
Copy it now: it is not shown again.</source>
        <translation>新しいキー「{name}」: {key}
今すぐコピーしてください。再表示はされません。</translation>
    </message>
    <message>
        <source>Revoke API key</source>
        <translation>API キーを無効化</translation>
    </message>
    <message>
        <source>Revoke {key}? Tools using it stop working.</source>
        <translation>{key} を無効にしますか？このキーを使うツールは動かなくなります。</translation>
    </message>
    <message>
        <source>Could not save the settings: {reason}</source>
        <translation>設定を保存できませんでした: {reason}</translation>
    </message>
    <message>
        <source>Saved.</source>
        <translation>保存しました。</translation>
    </message>
    <message>
        <source>Saved. Restart llmlb to apply: {settings}</source>
        <translation>保存しました。反映するには llmlb を再起動してください: {settings}</translation>
    </message>
    <message>
        <source>never used</source>
        <translation>未使用</translation>
    </message>
    <message>
        <source>used just now</source>
        <translation>たった今使用</translation>
    </message>
    <message>
        <source>used {n} min ago</source>
        <translation>{n} 分前に使用</translation>
    </message>
    <message>
        <source>used {n} h ago</source>
        <translation>{n} 時間前に使用</translation>
    </message>
    <message>
        <source>used on {date}</source>
        <translation>{date} に使用</translation>
    </message>
    <message>
        <source>serving</source>
        <translation>提供中</translation>
    </message>
    <message>
        <source>a model failed</source>
        <translation>モデルにエラー</translation>
    </message>
    <message>
        <source>paused</source>
        <translation>一時停止中</translation>
    </message>
    <message>
        <source>idle</source>
        <translation>待機中</translation>
    </message>
    <message>
        <source>Open</source>
        <translation>開く</translation>
    </message>
    <message>
        <source>No model registered</source>
        <translation>登録済みのモデルはありません</translation>
    </message>
    <message>
        <source>Models</source>
        <translation>モデル</translation>
    </message>
    <message>
        <source>Pause serving</source>
        <translation>提供を一時停止</translation>
    </message>
    <message>
        <source>Earlier messages are not sent: they do not fit the model's {context} context</source>
        <translation>以前のメッセージは送信されません: モデルの {context} コンテキストに収まりません</translation>
    </message>
    <message>
        <source>{name} is cut to fit the model's {context} context: its first {sent} of {total} characters are sent</source>
        <translation>{name} はモデルの {context} コンテキストに収まるよう切り詰められました: {total} 文字のうち最初の {sent} 文字を送信します</translation>
    </message>
    <message>
        <source>This message is too long for the model's {context} context: shorten it and send again.</source>
        <translation>このメッセージはモデルの {context} コンテキストには長すぎます。短くしてもう一度送信してください。</translation>
    </message>
    <message>
        <source>Name</source>
        <translation>名前</translation>
    </message>
    <message>
        <source>Machine</source>
        <translation>マシン</translation>
    </message>
    <message>
        <source>GPU</source>
        <translation>GPU</translation>
    </message>
    <message>
        <source>Requests</source>
        <translation>リクエスト</translation>
    </message>
    <message>
        <source>Uptime</source>
        <translation>稼働時間</translation>
    </message>
    <message>
        <source>Tags</source>
        <translation>タグ</translation>
    </message>
    <message>
        <source>online</source>
        <translation>オンライン</translation>
    </message>
    <message>
        <source>offline</source>
        <translation>オフライン</translation>
    </message>
    <message>
        <source>pending</source>
        <translation>承認待ち</translation>
    </message>
    <message>
        <source>registering</source>
        <translation>登録中</translation>
    </message>
    <message>
        <source>ok</source>
        <translation>通常</translation>
    </message>
    <message>
        <source>high</source>
        <translation>高負荷</translation>
    </message>
    <message>
        <source>full</source>
        <translation>満杯</translation>
    </message>
    <message>
        <source>waiting</source>
        <translation>待機中</translation>
    </message>
    <message>
        <source>downloading</source>
        <translation>ダウンロード中</translation>
    </message>
    <message>
        <source>ready</source>
        <translation>準備完了</translation>
    </message>
    <message>
        <source>error</source>
        <translation>エラー</translation>
    </message>
    <message>
        <source>This computer's node is part of llmlb: it cannot be deleted while llmlb runs. To stop it serving, pause serving or delete its models.</source>
        <translation>このコンピューターのノードは llmlb の一部のため、llmlb の実行中は削除できません。提供を止めるには、提供を一時停止するかモデルを削除してください。</translation>
    </message>
    <message>
        <source>{status}, load {load}</source>
        <translation>{status}、負荷 {load}</translation>
    </message>
    <message>
        <source>nodes</source>
        <translation>ノード</translation>
    </message>
    <message>
        <source>◀ Previous</source>
        <translation>◀ 前へ</translation>
    </message>
    <message>
        <source>Next ▶</source>
        <translation>次へ ▶</translation>
    </message>
    <message>
        <source>previous page</source>
        <translation>前のページ</translation>
    </message>
    <message>
        <source>next page</source>
        <translation>次のページ</translation>
    </message>
    <message>
        <source>Approve</source>
        <translation>承認</translation>
    </message>
    <message>
        <source>Rename / tags…</source>
        <translation>名前 / タグ…</translation>
    </message>
    <message>
        <source>Export JSON</source>
        <translation>JSON で書き出す</translation>
    </message>
    <message>
        <source>Export CSV</source>
        <translation>CSV で書き出す</translation>
    </message>
    <message>
        <source>Add a server…</source>
        <translation>サーバーを追加…</translation>
    </message>
    <message>
        <source>Duration</source>
        <translation>所要時間</translation>
    </message>
    <message>
        <source>node details</source>
        <translation>ノードの詳細</translation>
    </message>
    <message>
        <source>Details</source>
        <translation>詳細</translation>
    </message>
    <message>
        <source>Activity</source>
        <translation>アクティビティ</translation>
    </message>
    <message>
        <source>node log, newest last</source>
        <translation>ノードのログ（新しいものが最後）</translation>
    </message>
    <message>
        <source>Log</source>
        <translation>ログ</translation>
    </message>
    <message>
        <source>Requests a minute, last 24 h</source>
        <translation>1 分あたりのリクエスト数（直近 24 時間）</translation>
    </message>
    <message>
        <source>GPU use, last 24 h (%)</source>
        <translation>GPU 使用率（直近 24 時間、%）</translation>
    </message>
    <message>
        <source>Recent requests</source>
        <translation>最近のリクエスト</translation>
    </message>
    <message>
        <source>recent requests on this node</source>
        <translation>このノードの最近のリクエスト</translation>
    </message>
    <message>
        <source>The node's traffic is unavailable: {reason}</source>
        <translation>ノードのトラフィックを取得できません: {reason}</translation>
    </message>
    <message>
        <source>{ms} ms</source>
        <translation>{ms} ms</translation>
    </message>
    <message>
        <source>Recent requests are unavailable: {reason}</source>
        <translation>最近のリクエストを取得できません: {reason}</translation>
    </message>
    <message>
        <source>This node's log cannot be read through llmlb: it is an external server.</source>
        <translation>このノードのログは llmlb から読めません: 外部サーバーです。</translation>
    </message>
    <message>
        <source>The node's log could not be fetched: {reason}</source>
        <translation>ノードのログを取得できませんでした: {reason}</translation>
    </message>
    <message>
        <source>The node's log is empty.</source>
        <translation>ノードのログは空です。</translation>
    </message>
    <message>
        <source>page {page} of {pages}</source>
        <translation>{pages} ページ中 {page} ページ目</translation>
    </message>
    <message>
        <source>Join another machine: {command}</source>
        <translation>別のマシンを参加させる: {command}</translation>
    </message>
    <message>
        <source>On the LAN, not joined yet: {names}</source>
        <translation>LAN 上で未参加: {names}</translation>
    </message>
    <message>
        <source>Select a node to see its details.</source>
        <translation>ノードを選ぶと詳細が表示されます。</translation>
    </message>
    <message>
        <source>status: {status}</source>
        <translation>状態: {status}</translation>
    </message>
    <message>
        <source>none</source>
        <translation>なし</translation>
    </message>
    <message>
        <source>  — metrics are stale</source>
        <translation>  — 計測値が古くなっています</translation>
    </message>
    <message>
        <source>address: {url}</source>
        <translation>アドレス: {url}</translation>
    </message>
    <message>
        <source>runtime: {version}</source>
        <translation>ランタイム: {version}</translation>
    </message>
    <message>
        <source>GPU: {device}</source>
        <translation>GPU: {device}</translation>
    </message>
    <message>
        <source>{n} s ago</source>
        <translation>{n} 秒前</translation>
    </message>
    <message>
        <source>{n} min ago</source>
        <translation>{n} 分前</translation>
    </message>
    <message>
        <source>{n} h ago</source>
        <translation>{n} 時間前</translation>
    </message>
    <message>
        <source>it joined and waits for your approval (Approve, below the table)</source>
        <translation>参加して承認を待っています（表の下の「承認」）</translation>
    </message>
    <message>
        <source>llmlb has not heard from it since it started</source>
        <translation>llmlb の起動以来、応答がありません</translation>
    </message>
    <message>
        <source>no heartbeat since {ago}: the node stopped or cannot be reached</source>
        <translation>{ago}からハートビートがありません。ノードが停止しているか、到達できません</translation>
    </message>
    <message>
        <source>approved; {ready} of {total} of its models ready</source>
        <translation>承認済み。モデル {total} 個中 {ready} 個が準備完了</translation>
    </message>
    <message>
        <source>its last heartbeat was {ago}: the figures below may be old</source>
        <translation>最後のハートビートは {ago} です。以下の数値は古い可能性があります</translation>
    </message>
    <message>
        <source>answering; last heartbeat {ago}</source>
        <translation>応答中。最後のハートビートは {ago}</translation>
    </message>
    <message>
        <source> — {used} in use</source>
        <translation> — 使用中 {used}</translation>
    </message>
    <message>
        <source>why: {reason}</source>
        <translation>理由: {reason}</translation>
    </message>
    <message>
        <source>memory: {free} free of {total}</source>
        <translation>メモリ: {total} 中 {free} 空き</translation>
    </message>
    <message>
        <source>loaded models: {models}</source>
        <translation>読み込み済みモデル: {models}</translation>
    </message>
    <message>
        <source>requests in flight: {active} of {slots} slots</source>
        <translation>処理中のリクエスト: {slots} スロット中 {active}</translation>
    </message>
    <message>
        <source>{model} {rate} tokens/s</source>
        <translation>{model} {rate} トークン/秒</translation>
    </message>
    <message>
        <source>speed: {rates}</source>
        <translation>速度: {rates}</translation>
    </message>
    <message>
        <source>downloading {model}: {done} of {total}</source>
        <translation>{model} をダウンロード中: {total} 中 {done}</translation>
    </message>
    <message>
        <source>  • {name}: {state}, {done} of {total}</source>
        <translation>  • {name}: {state}、{total} 中 {done}</translation>
    </message>
    <message>
        <source>Rename node</source>
        <translation>ノード名を変更</translation>
    </message>
    <message>
        <source>Name:</source>
        <translation>名前:</translation>
    </message>
    <message>
        <source>Tags (comma-separated):</source>
        <translation>タグ（カンマ区切り）:</translation>
    </message>
    <message>
        <source>Delete node</source>
        <translation>ノードを削除</translation>
    </message>
    <message>
        <source>Delete {name}? llmlb stops sending it requests; add it again to use it.</source>
        <translation>{name} を削除しますか？ llmlb はこのサーバーへのリクエスト送信をやめます。再び使うには追加し直してください。</translation>
    </message>
    <message>
        <source>Delete {name}? It must join again to serve.</source>
        <translation>{name} を削除しますか？提供するには再び参加する必要があります。</translation>
    </message>
    <message>
        <source>Export nodes</source>
        <translation>ノードを書き出す</translation>
    </message>
    <message>
        <source>New chat</source>
        <translation>新しいチャット</translation>
    </message>
    <message>
        <source>conversations</source>
        <translation>会話</translation>
    </message>
    <message>
        <source>Delete chat</source>
        <translation>チャットを削除</translation>
    </message>
    <message>
        <source>Delete “{title}” and all its messages?</source>
        <translation>「{title}」とそのすべてのメッセージを削除しますか？</translation>
    </message>
    <message>
        <source>Download finished</source>
        <translation>ダウンロード完了</translation>
    </message>
    <message>
        <source>{name} is ready to use</source>
        <translation>{name} を使えるようになりました</translation>
    </message>
    <message>
        <source>Download failed</source>
        <translation>ダウンロード失敗</translation>
    </message>
    <message>
        <source>Node offline</source>
        <translation>ノードがオフライン</translation>
    </message>
    <message>
        <source>{name} stopped answering</source>
        <translation>{name} が応答しなくなりました</translation>
    </message>
    <message>
        <source>available</source>
        <translation>未登録</translation>
    </message>
    <message>
        <source>registered</source>
        <translation>登録済み</translation>
    </message>
    <message>
        <source>fits</source>
        <translation>動作可</translation>
    </message>
    <message>
        <source>may be slow</source>
        <translation>低速の可能性</translation>
    </message>
    <message>
        <source>won't fit</source>
        <translation>メモリ不足</translation>
    </message>
    <message>
        <source>status: {state}</source>
        <translation>状態: {state}</translation>
    </message>
    <message>
        <source>dismiss message</source>
        <translation>メッセージを閉じる</translation>
    </message>
    <message>
        <source>Register a model</source>
        <translation>モデルを登録</translation>
    </message>
    <message>
        <source>org/repo or https://huggingface.co/org/repo</source>
        <translation>org/repo または https://huggingface.co/org/repo</translation>
    </message>
    <message>
        <source>Hugging Face repo or URL</source>
        <translation>Hugging Face のリポジトリまたは URL</translation>
    </message>
    <message>
        <source>only when the repo has several GGUF files</source>
        <translation>リポジトリに GGUF ファイルが複数ある場合のみ</translation>
    </message>
    <message>
        <source>file name</source>
        <translation>ファイル名</translation>
    </message>
    <message>
        <source>display name</source>
        <translation>表示名</translation>
    </message>
    <message>
        <source>Repo or URL</source>
        <translation>リポジトリまたは URL</translation>
    </message>
    <message>
        <source>File (optional)</source>
        <translation>ファイル（任意）</translation>
    </message>
    <message>
        <source>Display name (optional)</source>
        <translation>表示名（任意）</translation>
    </message>
    <message>
        <source>Enter a Hugging Face repo id (org/name) or a model URL.</source>
        <translation>Hugging Face のリポジトリ ID（org/name）またはモデルの URL を入力してください。</translation>
    </message>
    <message>
        <source>Enter the server's address, e.g. http://192.168.1.20:8080.</source>
        <translation>サーバーのアドレスを入力してください（例: http://192.168.1.20:8080）。</translation>
    </message>
    <message>
        <source>'{url}' is not a valid address.</source>
        <translation>「{url}」は有効なアドレスではありません。</translation>
    </message>
    <message>
        <source>The address must start with http:// or https:// and name a host.</source>
        <translation>アドレスは http:// または https:// で始まり、ホストを含む必要があります。</translation>
    </message>
    <message>
        <source>The address must not have a query (?…) or a fragment (#…).</source>
        <translation>アドレスにクエリ（?…）やフラグメント（#…）を含めることはできません。</translation>
    </message>
    <message>
        <source>Add a server</source>
        <translation>サーバーを追加</translation>
    </message>
    <message>
        <source>Any OpenAI-compatible server (llama-server, vLLM, Ollama, LM Studio): its models are served through llmlb like the nodes' own.</source>
        <translation>OpenAI 互換のサーバー（llama-server、vLLM、Ollama、LM Studio）なら何でも追加できます。そのモデルはノードのモデルと同じように llmlb を通して提供されます。</translation>
    </message>
    <message>
        <source>Server address</source>
        <translation>サーバーのアドレス</translation>
    </message>
    <message>
        <source>only when the server asks for one</source>
        <translation>サーバーが求める場合のみ</translation>
    </message>
    <message>
        <source>API key</source>
        <translation>API キー</translation>
    </message>
    <message>
        <source>e.g. vllm-box</source>
        <translation>例: vllm-box</translation>
    </message>
    <message>
        <source>Address</source>
        <translation>アドレス</translation>
    </message>
    <message>
        <source>API key (optional)</source>
        <translation>API キー（任意）</translation>
    </message>
    <message>
        <source>serving was paused in the llmlb app</source>
        <translation>llmlb アプリで提供が一時停止されていました</translation>
    </message>
    <message>
        <source>no model of that name is registered</source>
        <translation>その名前のモデルは登録されていません</translation>
    </message>
    <message>
        <source>the model is not ready (it is still downloading)</source>
        <translation>モデルの準備ができていません (まだダウンロード中です)</translation>
    </message>
    <message>
        <source>the model failed to load</source>
        <translation>モデルを読み込めませんでした</translation>
    </message>
    <message>
        <source>the model is not ready</source>
        <translation>モデルの準備ができていません</translation>
    </message>
    <message>
        <source>every node was busy and it waited too long</source>
        <translation>すべてのノードが使用中で、待ち時間が長すぎました</translation>
    </message>
    <message>
        <source>the node did not respond</source>
        <translation>ノードが応答しませんでした</translation>
    </message>
    <message>
        <source>the answer broke off</source>
        <translation>応答が途中で切れました</translation>
    </message>
    <message>
        <source>the request was not valid</source>
        <translation>リクエストが正しくありません</translation>
    </message>
    <message>
        <source>the API key was missing or wrong</source>
        <translation>API キーがないか、正しくありません</translation>
    </message>
    <message>
        <source>the API key may not use this</source>
        <translation>この API キーでは使用できません</translation>
    </message>
    <message>
        <source>the request was too large</source>
        <translation>リクエストが大きすぎます</translation>
    </message>
    <message>
        <source>every node was busy and the queue was full</source>
        <translation>すべてのノードが使用中で、キューが満杯でした</translation>
    </message>
    <message>
        <source>the client left before the answer</source>
        <translation>応答の前にクライアントが切断しました</translation>
    </message>
    <message>
        <source>the node did not respond in time</source>
        <translation>ノードが時間内に応答しませんでした</translation>
    </message>
    <message>
        <source>the node reported an error</source>
        <translation>ノードがエラーを返しました</translation>
    </message>
    <message>
        <source>the request was refused</source>
        <translation>リクエストは拒否されました</translation>
    </message>
    <message>
        <source>Cut at {kb} KB: the rest was not kept.</source>
        <translation>{kb} KB で切り詰め: 残りは保存されていません。</translation>
    </message>
    <message>
        <source>Pick a request to see what it sent and got.</source>
        <translation>リクエストを選ぶと、送信内容と受信内容が表示されます。</translation>
    </message>
    <message>
        <source>what happened</source>
        <translation>結果</translation>
    </message>
    <message>
        <source>Show the details</source>
        <translation>詳細を表示</translation>
    </message>
    <message>
        <source>request details</source>
        <translation>リクエストの詳細</translation>
    </message>
    <message>
        <source>Request body</source>
        <translation>リクエスト本文</translation>
    </message>
    <message>
        <source>Response body</source>
        <translation>レスポンス本文</translation>
    </message>
    <message>
        <source>Failed: {reason}.</source>
        <translation>失敗: {reason}。</translation>
    </message>
    <message>
        <source>Answered ({status}).</source>
        <translation>応答しました ({status})。</translation>
    </message>
    <message>
        <source>Not kept</source>
        <translation>保存されていません</translation>
    </message>
    <message>
        <source>Error</source>
        <translation>エラー</translation>
    </message>
    <message>
        <source>API</source>
        <translation>API</translation>
    </message>
    <message>
        <source>streamed</source>
        <translation>ストリーミング</translation>
    </message>
    <message>
        <source>Client</source>
        <translation>クライアント</translation>
    </message>
    <message>
        <source>Time to first token</source>
        <translation>最初のトークンまでの時間</translation>
    </message>
    <message>
        <source>Generating</source>
        <translation>生成時間</translation>
    </message>
    <message>
        <source>Add</source>
        <translation>追加</translation>
    </message>
    <message>
        <source>Give the server a name (how the Nodes list shows it).</source>
        <translation>サーバーに名前を付けてください（ノード一覧での表示名です）。</translation>
    </message>
    <message>
        <source>The balancer refused the server: {reason}</source>
        <translation>バランサーがサーバーを拒否しました: {reason}</translation>
    </message>
    <message>
        <source>llmlb cannot start</source>
        <translation>llmlb を起動できません</translation>
    </message>
    <message>
        <source>since {time}</source>
        <translation>{time} 以降</translation>
    </message>
    <message>
        <source>and was never heard from</source>
        <translation>（一度も応答がありません）</translation>
    </message>
    <message>
        <source>Node {name} is offline: no heartbeat {since}. Requests go to other nodes.</source>
        <translation>ノード {name} はオフラインです: {since}ハートビートがありません。リクエストは他のノードに送られます。</translation>
    </message>
    <message>
        <source>Node {name} is nearly out of disk space: {free} free of {total}.</source>
        <translation>ノード {name} のディスク空き容量がほとんどありません: {total} 中 {free} 空き。</translation>
    </message>
    <message>
        <source>{device} on node {name} has only {free} free of {total} while the node runs nothing: another program may be holding its memory.</source>
        <translation>ノード {name} の {device} は、何も実行していないのに {total} 中 {free} しか空いていません。別のプログラムがメモリを使っている可能性があります。</translation>
    </message>
    <message>
        <source>{rate}% of requests failed in the last hour ({errors} of {requests}).</source>
        <translation>直近 1 時間でリクエストの {rate}% が失敗しました（{requests} 件中 {errors} 件）。</translation>
    </message>
    <message>
        <source>no reason given</source>
        <translation>理由は不明です</translation>
    </message>
    <message>
        <source>Model {name} is in error: {reason}</source>
        <translation>モデル {name} でエラーが発生しています: {reason}</translation>
    </message>
    <message>
        <source>GPU memory in use on node {name} rose all through the last hour with no requests: a program may be leaking it.</source>
        <translation>ノード {name} の GPU メモリ使用量が、リクエストがないのに直近 1 時間ずっと増え続けています。プログラムがメモリをリークしている可能性があります。</translation>
    </message>
    <message>
        <source>alerts</source>
        <translation>アラート</translation>
    </message>
    <message>
        <source>Alerts</source>
        <translation>アラート</translation>
    </message>
    <message>
        <source>No alerts: every node and model is fine.</source>
        <translation>アラートはありません。すべてのノードとモデルは正常です。</translation>
    </message>
    <message>
        <source>Dismiss</source>
        <translation>閉じる</translation>
    </message>
    <message>
        <source>Dismiss: {alert}</source>
        <translation>閉じる: {alert}</translation>
    </message>
    <message>
        <source>Time</source>
        <translation>時刻</translation>
    </message>
    <message>
        <source>Level</source>
        <translation>レベル</translation>
    </message>
    <message>
        <source>Source</source>
        <translation>発生元</translation>
    </message>
    <message>
        <source>Message</source>
        <translation>メッセージ</translation>
    </message>
    <message>
        <source>debug</source>
        <translation>デバッグ</translation>
    </message>
    <message>
        <source>info</source>
        <translation>情報</translation>
    </message>
    <message>
        <source>warning</source>
        <translation>警告</translation>
    </message>
    <message>
        <source>critical</source>
        <translation>重大</translation>
    </message>
    <message>
        <source>All levels</source>
        <translation>すべてのレベル</translation>
    </message>
    <message>
        <source>Info and above</source>
        <translation>情報以上</translation>
    </message>
    <message>
        <source>Warnings and errors</source>
        <translation>警告とエラー</translation>
    </message>
    <message>
        <source>Errors only</source>
        <translation>エラーのみ</translation>
    </message>
    <message>
        <source>Last 15 minutes</source>
        <translation>過去 15 分</translation>
    </message>
    <message>
        <source>Last hour</source>
        <translation>過去 1 時間</translation>
    </message>
    <message>
        <source>Last 24 hours</source>
        <translation>過去 24 時間</translation>
    </message>
    <message>
        <source>Last 7 days</source>
        <translation>過去 7 日</translation>
    </message>
    <message>
        <source>All</source>
        <translation>すべて</translation>
    </message>
    <message>
        <source>Text files</source>
        <translation>テキストファイル</translation>
    </message>
    <message>
        <source>JSON lines</source>
        <translation>JSON 行形式</translation>
    </message>
    <message>
        <source>whose log</source>
        <translation>どのログか</translation>
    </message>
    <message>
        <source>Balancer</source>
        <translation>バランサー</translation>
    </message>
    <message>
        <source>lowest level shown</source>
        <translation>表示する最低レベル</translation>
    </message>
    <message>
        <source>time range</source>
        <translation>期間</translation>
    </message>
    <message>
        <source>keyword</source>
        <translation>キーワード</translation>
    </message>
    <message>
        <source>Keyword</source>
        <translation>キーワード</translation>
    </message>
    <message>
        <source>Live tail</source>
        <translation>ライブ表示</translation>
    </message>
    <message>
        <source>Live tail: show new entries as they are written</source>
        <translation>ライブ表示: 書き込まれた新しい項目を表示</translation>
    </message>
    <message>
        <source>Download as text…</source>
        <translation>テキストでダウンロード…</translation>
    </message>
    <message>
        <source>Download as JSON lines…</source>
        <translation>JSON 行形式でダウンロード…</translation>
    </message>
    <message>
        <source>log entries</source>
        <translation>ログの項目</translation>
    </message>
    <message>
        <source>The log of the node {name}</source>
        <translation>ノード {name} のログ</translation>
    </message>
    <message>
        <source>Nothing matches these filters.</source>
        <translation>この条件に一致する項目はありません。</translation>
    </message>
    <message>
        <source>The newest {n} entries; narrow the filters for older ones.</source>
        <translation>最新の {n} 件です。古いものは条件を絞り込んで表示してください。</translation>
    </message>
    <message>
        <source>The log stopped updating: {reason}. The entries shown were read before; the live tail keeps trying.</source>
        <translation>ログの更新が止まりました: {reason}。表示中の項目はそれ以前に読み込んだものです。ライブ表示は再試行を続けます。</translation>
    </message>
    <message>
        <source>This log cannot be shown: {reason}</source>
        <translation>このログは表示できません: {reason}</translation>
    </message>
    <message>
        <source>Save the log</source>
        <translation>ログを保存</translation>
    </message>
    <message>
        <source>Saved to {path}</source>
        <translation>{path} に保存しました</translation>
    </message>
    <message>
        <source>The log could not be saved: {reason}</source>
        <translation>ログを保存できませんでした: {reason}</translation>
    </message>
    <message>
        <source>requests</source>
        <translation>リクエスト</translation>
    </message>
    <message>
        <source>errors</source>
        <translation>エラー</translation>
    </message>
    <message>
        <source>median</source>
        <translation>中央値</translation>
    </message>
    <message>
        <source>95th percentile</source>
        <translation>95 パーセンタイル</translation>
    </message>
    <message>
        <source>error rate</source>
        <translation>エラー率</translation>
    </message>
    <message>
        <source>tokens/s</source>
        <translation>トークン/秒</translation>
    </message>
    <message>
        <source>GPU use</source>
        <translation>GPU 使用率</translation>
    </message>
    <message>
        <source>{line}: none recorded</source>
        <translation>{line}: 記録なし</translation>
    </message>
    <message>
        <source>{line}: {zero} throughout</source>
        <translation>{line}: 常に {zero}</translation>
    </message>
    <message>
        <source>{line}: now {now}, peak {peak} at {when}</source>
        <translation>{line}: 現在 {now}、ピーク {peak}（{when}）</translation>
    </message>
    <message>
        <source>{graph} — {parts}.</source>
        <translation>{graph} — {parts}。</translation>
    </message>
    <message>
        <source>; </source>
        <translation>、</translation>
    </message>
    <message>
        <source>{graph}, in words</source>
        <translation>{graph}（文章で）</translation>
    </message>
    <message>
        <source>{graph}: no data yet.</source>
        <translation>{graph}: まだデータがありません。</translation>
    </message>
    <message>
        <source>Position</source>
        <translation>順番</translation>
    </message>
    <message>
        <source>Waited</source>
        <translation>待機時間</translation>
    </message>
    <message>
        <source>ETA</source>
        <translation>完了予定</translation>
    </message>
    <message>
        <source>Running for</source>
        <translation>実行時間</translation>
    </message>
    <message>
        <source>Queue: nothing waiting or running.</source>
        <translation>キュー: 待機中・実行中のものはありません。</translation>
    </message>
    <message>
        <source>Waiting</source>
        <translation>待機中</translation>
    </message>
    <message>
        <source>requests waiting</source>
        <translation>待機中のリクエスト</translation>
    </message>
    <message>
        <source>Running</source>
        <translation>実行中</translation>
    </message>
    <message>
        <source>requests running</source>
        <translation>実行中のリクエスト</translation>
    </message>
    <message>
        <source>Queue: {waiting} waiting, {running} running.</source>
        <translation>キュー: 待機中 {waiting} 件、実行中 {running} 件。</translation>
    </message>
    <message>
        <source>The queue could not be read: {reason}</source>
        <translation>キューを読み込めませんでした: {reason}</translation>
    </message>
    <message>
        <source>Tokens in / out</source>
        <translation>トークン 入力 / 出力</translation>
    </message>
    <message>
        <source>TTFT</source>
        <translation>最初のトークンまで</translation>
    </message>
    <message>
        <source>{m} min {s} s</source>
        <translation>{m} 分 {s} 秒</translation>
    </message>
    <message>
        <source>{s} s</source>
        <translation>{s} 秒</translation>
    </message>
    <message>
        <source>{status} failed</source>
        <translation>{status} 失敗</translation>
    </message>
    <message>
        <source>request history</source>
        <translation>リクエスト履歴</translation>
    </message>
    <message>
        <source>Load older</source>
        <translation>さらに古いものを読み込む</translation>
    </message>
    <message>
        <source>Load older requests</source>
        <translation>さらに古いリクエストを読み込む</translation>
    </message>
    <message>
        <source>Loading the request history…</source>
        <translation>リクエスト履歴を読み込み中…</translation>
    </message>
    <message>
        <source>The history could not be read: {reason}</source>
        <translation>履歴を読み込めませんでした: {reason}</translation>
    </message>
    <message>
        <source>No requests in the last 7 days yet. They show here as they finish.</source>
        <translation>過去 7 日間のリクエストはまだありません。完了するとここに表示されます。</translation>
    </message>
    <message>
        <source>Requests shown: {n}, all of the last 7 days.</source>
        <translation>表示中のリクエスト: {n} 件 (過去 7 日間のすべて)。</translation>
    </message>
    <message>
        <source>Requests shown: the newest {n}.</source>
        <translation>表示中のリクエスト: 最新の {n} 件。</translation>
    </message>
</context>
</TS>