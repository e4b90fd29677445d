import Mustache

/// The console's pages as Mustache templates (HTML-escaped by `{{name}}`; `{{{name}}}` only for
/// markup the console made itself, such as a workflow's SVG) and its stylesheet, all in the binary.
enum ConsoleTemplates {
    static let library: MustacheLibrary = {
        var library = MustacheLibrary()
        for (name, text) in templates { try! library.register(text, named: name) }
        return library
    }()

    static func render(_ name: String, _ object: [String: Any]) -> String {
        library.render(object, withTemplate: name) ?? ""
    }

    static let templates: [String: String] = [
        "layout": """
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>{{title}} · Switchboard</title>
            <link rel="stylesheet" href="/console/assets/console.css">
            </head>
            <body>
            <header class="bar">
              <a class="brand" href="/console/runs">Switchboard</a>
              {{#signedIn}}
              <nav>
                <a href="/console/runs"{{#nav_runs}} aria-current="page"{{/nav_runs}}>Runs</a>
                <a href="/console/reviews"{{#nav_reviews}} aria-current="page"{{/nav_reviews}}>Reviews</a>
                <a href="/console/deliveries"{{#nav_deliveries}} aria-current="page"{{/nav_deliveries}}>Deliveries</a>
                <a href="/console/workflows"{{#nav_workflows}} aria-current="page"{{/nav_workflows}}>Workflows</a>
                <a href="/console/lists"{{#nav_lists}} aria-current="page"{{/nav_lists}}>Lists</a>
                <a href="/console/connectors"{{#nav_connectors}} aria-current="page"{{/nav_connectors}}>Connectors</a>
                <a href="/console/audit"{{#nav_audit}} aria-current="page"{{/nav_audit}}>Audit</a>
              </nav>
              <form class="signout" method="post" action="/console/logout">
                <input type="hidden" name="csrf_token" value="{{csrf}}">
                <span class="who">{{keyName}}</span>
                <button type="submit">Sign out</button>
              </form>
              {{/signedIn}}
            </header>
            <main>
            {{{body}}}
            </main>
            </body>
            </html>
            """,
        "login": """
            <section class="login">
              <h1>Sign in</h1>
              {{#error}}<p class="error" role="alert">{{error}}</p>{{/error}}
              <form method="post" action="/console/login">
                <label for="key">API key</label>
                <input id="key" name="key" type="password" autocomplete="current-password" required autofocus>
                <button type="submit">Sign in</button>
              </form>
              <p class="hint">Create a key with <code>switchboard keys create --name you</code>; the console shows what its scopes allow.</p>
            </section>
            """,
        "runs": """
            <h1>Runs</h1>
            <form class="filters" method="get" action="/console/runs">
              <input name="q" value="{{q}}" placeholder="run id, event id, or data.inquiry.id=inq_123" aria-label="Search" size="36">
              <input name="since" value="{{since}}" placeholder="since (UTC)" aria-label="Since" size="17" title="2026-11-26 or 2026-11-26T10:00 (UTC)">
              <input name="until" value="{{until}}" placeholder="until (UTC)" aria-label="Until" size="17" title="2026-11-26 or 2026-11-26T10:00 (UTC)">
              <select name="workflow" aria-label="Workflow">
                <option value="">all workflows</option>
                {{#workflows}}<option value="{{id}}"{{#selected}} selected{{/selected}}>{{id}}</option>{{/workflows}}
              </select>
              <select name="status" aria-label="Status">
                <option value="">any status</option>
                {{#statuses}}<option value="{{name}}"{{#selected}} selected{{/selected}}>{{name}}</option>{{/statuses}}
              </select>
              <select name="decision" aria-label="Decision">
                <option value="">any decision</option>
                {{#decisions}}<option value="{{name}}"{{#selected}} selected{{/selected}}>{{name}}</option>{{/decisions}}
              </select>
              <button type="submit">Filter</button>
            </form>
            {{#notice}}<p class="notice" role="status">{{notice}}</p>{{/notice}}
            <table class="grid">
              <thead><tr><th>Run</th><th>Workflow</th><th>Status</th><th>Decision</th><th>Tags</th><th>Started</th></tr></thead>
              <tbody>
              {{#runs}}
                <tr><td><a href="/console/runs/{{id}}"><code>{{id}}</code></a></td><td>{{workflow}}</td>
                <td><span class="badge status-{{status}}">{{status}}</span></td><td>{{decision}}</td><td>{{tags}}</td>
                <td><time datetime="{{created}}">{{created}}</time></td></tr>
              {{/runs}}
              {{^runs}}<tr><td colspan="6" class="empty">No runs match.</td></tr>{{/runs}}
              </tbody>
            </table>
            {{#next}}<p class="pager"><a href="{{next}}">Older runs →</a></p>{{/next}}
            """,
        "run": """
            <p class="crumbs"><a href="/console/runs">Runs</a> / <code>{{id}}</code></p>
            <h1>{{workflow}} <span class="badge status-{{status}}">{{status}}</span> {{#decision}}<span class="badge decision">{{decision}}</span>{{/decision}}</h1>
            <dl class="facts">
              <dt>Workflow version</dt><dd>{{version}}</dd>
              <dt>Started</dt><dd><time datetime="{{created}}">{{created}}</time></dd>
              <dt>Updated</dt><dd><time datetime="{{updated}}">{{updated}}</time></dd>
              <dt>Trigger</dt><dd><code>{{trigger}}</code></dd>
              {{#tags}}<dt>Tags</dt><dd>{{tags}}</dd>{{/tags}}
              {{#error}}<dt>Error</dt><dd class="error">{{error}}</dd>{{/error}}
            </dl>
            {{#review}}
            <section class="review-actions" aria-label="Review">
              <h2>Waiting for a review</h2>
              <form method="post" action="/console/runs/{{id}}/review">
                <input type="hidden" name="csrf_token" value="{{csrf}}">
                <button type="submit" name="decision" value="approve" class="approve">Approve</button>
                <button type="submit" name="decision" value="decline" class="decline">Decline</button>
              </form>
            </section>
            {{/review}}
            {{#reviewNotAllowed}}<p class="hint">This run waits for a review; your key lacks the scope reviews:write.</p>{{/reviewNotAllowed}}
            <div class="columns">
              <section class="graph" aria-label="Workflow graph">{{{graph}}}</section>
              <section class="timeline" aria-label="Steps">
                <h2>Steps</h2>
                <ol class="steps">
                {{#steps}}
                  <li class="step" data-step="{{id}}" data-status="{{status}}" style="margin-left: {{indent}}em">
                    <div><strong>{{id}}</strong> <span class="kind">{{kind}}</span> <span class="badge status-{{status}}">{{status}}</span>
                    <span class="duration">{{duration}}</span></div>
                    <div class="times"><time datetime="{{started}}">{{started}}</time>{{#ended}} → <time datetime="{{ended}}">{{ended}}</time>{{/ended}}</div>
                    {{#output}}<pre class="json">{{output}}</pre>{{/output}}
                    {{#error}}<p class="error">{{error}}</p>{{/error}}
                  </li>
                {{/steps}}
                </ol>
                <h2>Input</h2><pre class="json">{{input}}</pre>
                <h2>Output</h2><pre class="json">{{output}}</pre>
                <h2>Deliveries</h2>
                <table class="grid">
                  <thead><tr><th>Delivery</th><th>Step</th><th>Connector</th><th>Status</th><th>Attempts</th></tr></thead>
                  <tbody>
                  {{#deliveries}}<tr><td><code>{{id}}</code></td><td>{{step}}</td><td>{{connector}} · {{operation}}</td>
                    <td><span class="badge status-{{status}}">{{status}}</span></td><td>{{attempts}}</td></tr>{{/deliveries}}
                  {{^deliveries}}<tr><td colspan="5" class="empty">No deliveries.</td></tr>{{/deliveries}}
                  </tbody>
                </table>
              </section>
            </div>
            """,
        "reviews": """
            <h1>Reviews</h1>
            <p class="hint">Runs waiting for a reviewer's decision, oldest first.</p>
            <table class="grid">
              <thead><tr><th>Run</th><th>Workflow</th><th>Waiting since</th><th>Facts</th><th></th></tr></thead>
              <tbody>
              {{#reviews}}
              <tr><td><a href="/console/runs/{{id}}"><code>{{id}}</code></a></td><td>{{workflow}}</td>
                <td><time datetime="{{since}}">{{since}}</time></td><td>{{#listed}}<dl class="facts tight">{{#fields}}<dt>{{name}}</dt><dd>{{value}}</dd>{{/fields}}</dl>{{/listed}}{{^listed}}<pre class="json small">{{facts}}</pre>{{/listed}}</td>
                <td>{{#canReview}}<form method="post" action="/console/runs/{{id}}/review">
                  <input type="hidden" name="csrf_token" value="{{csrf}}">
                  <button type="submit" name="decision" value="approve" class="approve">Approve</button>
                  <button type="submit" name="decision" value="decline" class="decline">Decline</button>
                </form>{{/canReview}}</td></tr>
              {{/reviews}}
              {{^reviews}}<tr><td colspan="5" class="empty">Nothing waits for a review.</td></tr>{{/reviews}}
              </tbody>
            </table>
            {{#next}}<p class="pager"><a href="{{next}}">Newer runs →</a></p>{{/next}}
            """,
        "deliveries": """
            <h1>Deliveries</h1>
            <form class="filters" method="get" action="/console/deliveries">
              <input name="run" value="{{run}}" placeholder="run id" aria-label="Run">
              <select name="connector" aria-label="Connector">
                <option value="">all connectors</option>
                {{#connectors}}<option value="{{id}}"{{#selected}} selected{{/selected}}>{{id}}</option>{{/connectors}}
              </select>
              <select name="status" aria-label="Status">
                <option value="">any status</option>
                {{#statuses}}<option value="{{name}}"{{#selected}} selected{{/selected}}>{{name}}</option>{{/statuses}}
              </select>
              <input name="since" value="{{since}}" placeholder="since (UTC)" aria-label="Since" size="17" title="2026-11-26 or 2026-11-26T10:00 (UTC)">
              <input name="until" value="{{until}}" placeholder="until (UTC)" aria-label="Until" size="17" title="2026-11-26 or 2026-11-26T10:00 (UTC)">
              <button type="submit">Filter</button>
            </form>
            {{#notice}}<p class="notice" role="status">{{notice}}</p>{{/notice}}
            {{#canRetry}}
            <form class="bulk" method="post" action="/console/deliveries/retry">
              <input type="hidden" name="csrf_token" value="{{csrf}}">
              <input type="hidden" name="run" value="{{run}}"><input type="hidden" name="connector" value="{{connector}}">
              <input type="hidden" name="status" value="{{status}}">
              <input type="hidden" name="since" value="{{since}}"><input type="hidden" name="until" value="{{until}}">
              <button type="submit">Retry all failed and dead that match</button>
            </form>
            {{/canRetry}}
            <table class="grid">
              <thead><tr><th>Delivery</th><th>Run</th><th>Step</th><th>Connector</th><th>Status</th><th>Attempts</th><th>Updated</th><th></th></tr></thead>
              <tbody>
              {{#deliveries}}
              <tr><td><a href="/console/deliveries/{{id}}"><code>{{id}}</code></a></td><td><a href="/console/runs/{{run}}"><code>{{run}}</code></a></td>
                <td>{{step}}</td><td>{{connector}} · {{operation}}</td><td><span class="badge status-{{status}}">{{status}}</span></td>
                <td>{{attempts}}</td><td><time datetime="{{updated}}">{{updated}}</time></td>
                <td>{{#retryable}}<form method="post" action="/console/deliveries/{{id}}/retry"><input type="hidden" name="csrf_token" value="{{csrf}}"><button type="submit">Retry</button></form>{{/retryable}}</td></tr>
              {{/deliveries}}
              {{^deliveries}}<tr><td colspan="8" class="empty">No deliveries match.</td></tr>{{/deliveries}}
              </tbody>
            </table>
            {{#next}}<p class="pager"><a href="{{next}}">Older deliveries →</a></p>{{/next}}
            """,
        "confirm-retry": """
            <h1>Retry {{count}} deliveries?</h1>
            <p>{{count}} failed or dead deliveries match{{#filter}} ({{filter}}){{/filter}}. Each is sent again and its run resumes.</p>
            <form method="post" action="/console/deliveries/retry">
              <input type="hidden" name="csrf_token" value="{{csrf}}">
              <input type="hidden" name="run" value="{{run}}"><input type="hidden" name="connector" value="{{connector}}">
              <input type="hidden" name="status" value="{{status}}"><input type="hidden" name="confirm" value="{{count}}">
              <input type="hidden" name="since" value="{{since}}"><input type="hidden" name="until" value="{{until}}">
              <button type="submit" class="approve">Retry {{count}}</button> <a href="/console/deliveries">Cancel</a>
            </form>
            """,
        "delivery": """
            <p class="crumbs"><a href="/console/deliveries">Deliveries</a> / <code>{{id}}</code></p>
            <h1>{{connector}} · {{operation}} <span class="badge status-{{status}}">{{status}}</span></h1>
            <dl class="facts">
              <dt>Run</dt><dd><a href="/console/runs/{{run}}"><code>{{run}}</code></a> (step {{step}})</dd>
              <dt>Attempts</dt><dd>{{attempts}}</dd>
              {{#next}}<dt>Next attempt</dt><dd><time datetime="{{next}}">{{next}}</time></dd>{{/next}}
              {{#lastError}}<dt>Last error</dt><dd class="error">{{lastError}}</dd>{{/lastError}}
            </dl>
            {{#retryable}}<form method="post" action="/console/deliveries/{{id}}/retry"><input type="hidden" name="csrf_token" value="{{csrf}}"><button type="submit">Retry</button></form>{{/retryable}}
            <h2>As curl</h2>
            <pre class="json curl">{{curl}}</pre>
            <h2>Attempts</h2>
            <ol class="steps attempts">
            {{#attemptList}}
              <li class="step" data-attempt="{{number}}" data-status="{{outcome}}">
                <div><strong>#{{number}}</strong> <span class="kind">{{trigger}}</span> <span class="badge status-{{outcome}}">{{status}}</span>
                  <span class="duration">{{duration}} ms</span> <time datetime="{{started}}">{{started}}</time></div>
                {{#error}}<p class="error">{{error}}</p>{{/error}}
                <details><summary>Request</summary><pre class="json">{{request}}</pre></details>
                <details{{#open}} open{{/open}}><summary>Response</summary><pre class="json">{{response}}</pre></details>
              </li>
            {{/attemptList}}
            {{^attemptList}}<li class="empty">No attempt yet.</li>{{/attemptList}}
            </ol>
            """,
        "workflows": """
            <h1>Workflows</h1>
            <table class="grid">
              <thead><tr><th>Workflow</th><th>Trigger</th><th>Version</th><th>Steps</th><th>Description</th></tr></thead>
              <tbody>
              {{#workflows}}<tr><td><a href="/console/workflows/{{id}}">{{id}}</a></td><td>{{trigger}}</td><td>{{version}}</td>
                <td>{{steps}}</td><td>{{description}}</td></tr>{{/workflows}}
              </tbody>
            </table>
            """,
        "workflow": """
            <p class="crumbs"><a href="/console/workflows">Workflows</a> / {{id}}</p>
            <h1>{{id}} <span class="badge">{{version}}</span></h1>
            {{#description}}<p>{{description}}</p>{{/description}}
            <p class="hint">Decisions of the last 24 hours: {{#decisions}}<span class="badge">{{name}} {{count}}</span> {{/decisions}}{{^decisions}}none{{/decisions}}
              · <a href="/console/runs?workflow={{id}}">its runs</a></p>
            <div class="columns">
              <section class="graph" aria-label="Workflow graph">{{{graph}}}</section>
              <section>
                <h2>Versions</h2>
                <table class="grid"><thead><tr><th>Version</th><th>Recorded</th><th>SHA-256</th></tr></thead><tbody>
                {{#versions}}<tr><td>{{version}}{{#current}} (current){{/current}}</td><td><time datetime="{{created}}">{{created}}</time></td>
                  <td><code>{{sha}}</code></td></tr>{{/versions}}
                </tbody></table>
                <h2>Source <span class="hint">{{file}}</span></h2>
                <pre class="json source">{{source}}</pre>
              </section>
            </div>
            """,
        "lists": """
            <h1>Lists</h1>
            <table class="grid">
              <thead><tr><th>List</th><th>Kind</th><th>Items</th></tr></thead>
              <tbody>
              {{#lists}}<tr><td><a href="/console/lists/{{name}}">{{name}}</a></td><td>{{kind}}</td><td>{{count}}</td></tr>{{/lists}}
              {{^lists}}<tr><td colspan="3" class="empty">No lists yet: PUT /v1/lists/NAME or switchboard lists add.</td></tr>{{/lists}}
              </tbody>
            </table>
            """,
        "list": """
            <p class="crumbs"><a href="/console/lists">Lists</a> / {{name}}</p>
            <h1>{{name}} <span class="badge">{{kind}}</span></h1>
            {{#error}}<p class="error" role="alert">{{error}}</p>{{/error}}
            {{#canWrite}}
            <form class="filters" method="post" action="/console/lists/{{name}}/items">
              <input type="hidden" name="csrf_token" value="{{csrf}}">
              <input name="item" placeholder="{{placeholder}}" aria-label="Item" required>
              <button type="submit">Add</button>
            </form>
            {{/canWrite}}
            <table class="grid">
              <thead><tr><th>Item</th><th></th></tr></thead>
              <tbody>
              {{#items}}<tr><td><code>{{item}}</code></td><td>{{#canWrite}}<form method="post" action="/console/lists/{{name}}/remove">
                <input type="hidden" name="csrf_token" value="{{csrf}}"><input type="hidden" name="item" value="{{item}}">
                <button type="submit">Remove</button></form>{{/canWrite}}</td></tr>{{/items}}
              {{^items}}<tr><td colspan="2" class="empty">The list is empty.</td></tr>{{/items}}
              </tbody>
            </table>
            """,
        "connectors": """
            <h1>Connectors</h1>
            {{#result}}<p class="{{#ok}}notice{{/ok}}{{^ok}}error{{/ok}}" role="status">{{connector}}: {{status}}, {{detail}}</p>{{/result}}
            <table class="grid">
              <thead><tr><th>Connector</th><th>Kind</th><th>Circuit</th><th>Limits</th><th></th></tr></thead>
              <tbody>
              {{#connectors}}<tr><td>{{id}}</td><td>{{kind}}</td><td>{{circuit}}</td><td>{{limits}}</td>
                <td>{{#canTest}}<form method="post" action="/console/connectors/{{id}}/test"><input type="hidden" name="csrf_token" value="{{csrf}}">
                <button type="submit">Test</button></form>{{/canTest}}</td></tr>{{/connectors}}
              </tbody>
            </table>
            """,
        "audit": """
            <h1>Audit log</h1>
            <form class="filters" method="get" action="/console/audit">
              <input name="action" value="{{action}}" placeholder="action, such as review.decided" aria-label="Action">
              <input name="actor" value="{{actor}}" placeholder="actor name" aria-label="Actor">
              <button type="submit">Filter</button>
            </form>
            <table class="grid">
              <thead><tr><th>When</th><th>Actor</th><th>Action</th><th>Target</th><th>Outcome</th><th>From</th></tr></thead>
              <tbody>
              {{#entries}}<tr><td><time datetime="{{at}}">{{at}}</time></td><td>{{actor}}</td><td>{{action}}</td><td><code>{{target}}</code></td>
                <td>{{outcome}}</td><td>{{from}}</td></tr>{{/entries}}
              {{^entries}}<tr><td colspan="6" class="empty">No entries match.</td></tr>{{/entries}}
              </tbody>
            </table>
            {{#next}}<p class="pager"><a href="{{next}}">Older entries →</a></p>{{/next}}
            """,
        "problem": """
            <h1>{{title}}</h1>
            <p class="error" role="alert">{{detail}}</p>
            <p><a href="/console/runs">Back to the runs</a></p>
            """,
    ]

    static let css = """
        :root{--ink:#1f2933;--muted:#616e7c;--line:#e4e7eb;--bg:#f8f9fb;--accent:#2457c5;--ok:#2f855a;--warn:#b7791f;--bad:#c53030}
        *{box-sizing:border-box}body{margin:0;font:14px/1.45 ui-sans-serif,system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--ink);background:var(--bg)}
        a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}
        code,pre{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace}
        .bar{display:flex;align-items:center;gap:24px;padding:10px 24px;background:#fff;border-bottom:1px solid var(--line)}
        .brand{font-weight:700;color:var(--ink)}nav{display:flex;gap:16px}nav a[aria-current]{font-weight:600;color:var(--ink)}
        .signout{margin-left:auto;display:flex;gap:10px;align-items:center}.who{color:var(--muted)}
        main{padding:20px 24px;max-width:1400px}h1{font-size:20px;margin:0 0 14px}h2{font-size:14px;margin:18px 0 8px}
        .grid{width:100%;border-collapse:collapse;background:#fff;border:1px solid var(--line)}
        .grid th,.grid td{padding:6px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
        .grid th{font-weight:600;color:var(--muted);font-size:12px;background:#fbfcfd}.empty{color:var(--muted);text-align:center}
        .badge{display:inline-block;padding:1px 7px;border-radius:10px;font-size:12px;background:#eef0f3}
        .status-completed,.status-succeeded{background:#e6f6ec;color:var(--ok)}.status-waiting,.status-pending,.status-sending{background:#fdf3e1;color:var(--warn)}
        .status-failed,.status-dead{background:#fdecec;color:var(--bad)}.status-running{background:#e8f0fe;color:var(--accent)}
        .decision{background:#eef0f3}.filters{display:flex;gap:8px;margin-bottom:12px}
        input,select,button{font:inherit;padding:5px 9px;border:1px solid #cbd2d9;border-radius:5px;background:#fff}
        button{cursor:pointer}button.approve{background:var(--ok);border-color:var(--ok);color:#fff}button.decline{background:var(--bad);border-color:var(--bad);color:#fff}
        .login{max-width:360px;margin:60px auto;background:#fff;padding:24px;border:1px solid var(--line);border-radius:8px}
        .login form{display:flex;flex-direction:column;gap:8px}.error{color:var(--bad)}.hint,.crumbs,.times,.kind,.duration{color:var(--muted)}
        .notice{color:var(--ok)}.facts{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0 0 12px}.facts dt{color:var(--muted)}
        .columns{display:grid;grid-template-columns:minmax(280px,auto) 1fr;gap:24px;align-items:start}
        .graph{background:#fff;border:1px solid var(--line);border-radius:6px;padding:8px;overflow:auto}
        .steps{list-style:none;padding:0;margin:0}.step{background:#fff;border:1px solid var(--line);border-left:3px solid #cbd2d9;border-radius:4px;padding:6px 10px;margin:0 0 6px}
        .step[data-status=completed],.step[data-status=succeeded]{border-left-color:var(--ok)}.step[data-status=failed]{border-left-color:var(--bad)}.step[data-status=waiting]{border-left-color:var(--warn)}
        pre.json{background:#fbfcfd;border:1px solid var(--line);border-radius:4px;padding:6px 8px;margin:4px 0;white-space:pre-wrap;word-break:break-word;max-height:240px;overflow:auto}
        pre.small{max-height:90px}.facts.tight{margin:0;gap:0 12px;font-size:13px}.review-actions{background:#fffaf0;border:1px solid #f6e0b5;border-radius:6px;padding:10px 14px;margin:0 0 14px}
        .review-actions form{display:flex;gap:10px}.pager{margin-top:10px}.bulk{margin:0 0 12px}
        details summary{cursor:pointer;color:var(--muted)}.curl{white-space:pre-wrap}pre.source{max-height:600px}
        """
}
