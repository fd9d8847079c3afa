//! The OpenAPI document for a route table, and the `/docs` page that embeds it. The document
//! is generated from the routes it is given (the server gives it its own table), so every
//! route the server answers is described (a route without its own description still appears,
//! with its summary and a generic answer) and nothing is described that the server does not
//! answer.
//!
//! Who may call a route depends on the configuration (an admin token, an ingest token), so the
//! document's `security` follows the running server's settings ([`AuthMode`]): a client
//! generated from it, or a tool that checks the server against it, reads what this server
//! enforces.

use serde_json::{json, Map, Value};

use super::route::{Access, Route};
use super::source_filter::SOURCE_PATTERN;
use crate::settings::sources::{SchemeKind, Source, SourceList};
use crate::settings::Settings;
use crate::store::MessageState;

const DOCS_HTML: &str = include_str!("docs.html");

/// Which credentials the server asks for, as far as the document is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthMode {
    /// `server.admin_token` is set: admin routes need `Authorization: Bearer`. When it is not,
    /// admin routes answer loopback clients without credentials and others with 403.
    pub admin_token: bool,
    /// `ingest.token` is set: ingest needs `?token=` or `X-Webhook-Token`.
    pub ingest_token: bool,
}

impl AuthMode {
    pub fn of(settings: &Settings) -> AuthMode {
        AuthMode {
            admin_token: settings.server.admin_token.is_some(),
            ingest_token: settings.ingest.token.is_some(),
        }
    }
}

/// The `/docs` page with `spec` (the document as JSON text) embedded, so one request (or a
/// saved copy) has everything.
pub fn docs_page(spec: &str) -> String {
    // `</` cannot end the script element early once escaped; JSON reads `<\/` as `</`.
    let spec = spec.replace("</", "<\\/");
    DOCS_HTML.replace(
        "<!--OPENAPI-->",
        &format!("<script type=\"application/json\" id=\"openapi-spec\">{spec}</script>"),
    )
}

/// The OpenAPI 3.1 document for `routes` and the ingest paths of `sources` as a server with
/// `mode`'s credentials answers them.
pub fn document(routes: &[Route], sources: &SourceList, mode: AuthMode) -> Value {
    let mut paths = Map::new();
    for source in sources.iter() {
        paths.insert(
            source.path.clone(),
            json!({"post": source_operation(source)}),
        );
    }
    for route in routes {
        let item = paths
            .entry(route.path.to_string())
            .or_insert_with(|| json!({}));
        item[route.method.to_ascii_lowercase()] = operation(route, mode);
    }
    let access = if mode.admin_token {
        "Admin endpoints take `Authorization: Bearer <server.admin_token>` (401 without it)."
    } else {
        "This server has no `server.admin_token`: admin endpoints answer loopback clients \
            without credentials and every other client with 403 (set a token to manage it \
            remotely; then they take `Authorization: Bearer <server.admin_token>`)."
    };
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "hookvault",
            "version": env!("CARGO_PKG_VERSION"),
            "description": format!("Durable webhook intake: a webhook is answered 2xx only \
                once it is committed to SQLite, then processed by a fixed pool of workers with \
                retries and dead letters. {access} Every error body is \
                `{{\"error\", \"message\"}}`."),
            "license": {"name": "MIT", "identifier": "MIT"}
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "adminBearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "`server.admin_token`, required by admin endpoints when it \
                        is set. While it is unset, admin operations list the empty requirement \
                        `{}` instead: loopback clients need no credentials, others get 403."
                },
                "ingestTokenQuery": {
                    "type": "apiKey", "in": "query", "name": "token",
                    "description": "ingest.token, when one is configured"
                },
                "ingestTokenHeader": {
                    "type": "apiKey", "in": "header", "name": "X-Webhook-Token",
                    "description": "ingest.token, when one is configured"
                }
            },
            "schemas": schemas(),
            "responses": {
                "Error": {
                    "description": "An error",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
                }
            }
        }
    })
}

fn operation(route: &Route, mode: AuthMode) -> Value {
    let mut op = describe(route.method, route.path).unwrap_or_else(|| {
        json!({"responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}}})
    });
    op["summary"] = json!(route.summary);
    op["operationId"] = json!(operation_id(route));
    // `security: []` and `[{}]` both mean "no credentials"; `x-hookvault-access` says in words
    // who may call, for /docs and for readers (the loopback rule has no OpenAPI scheme).
    let (tag, security, access, errors): (&str, Value, &str, &[&str]) = match route.access {
        Access::Open => (
            if route.path.starts_with("/api/") {
                "operations"
            } else {
                "service"
            },
            json!([]),
            "open",
            &[],
        ),
        Access::Ingest if mode.ingest_token => (
            "ingest",
            json!([{"ingestTokenQuery": []}, {"ingestTokenHeader": []}]),
            "ingest token (`?token=` or `X-Webhook-Token`)",
            &["401"],
        ),
        Access::Ingest => ("ingest", json!([{}]), "open (no ingest.token set)", &[]),
        Access::Admin if mode.admin_token => (
            "operations",
            json!([{"adminBearer": []}]),
            "admin: bearer token",
            &["401"],
        ),
        Access::Admin => (
            "operations",
            json!([{}]),
            "admin: loopback clients only (no server.admin_token set)",
            &["403"],
        ),
    };
    op["tags"] = json!([tag]);
    op["security"] = security;
    op["x-hookvault-access"] = json!(access);
    // Path parameters come from the pattern, so they always match it.
    let mut params: Vec<Value> = route
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            // A Discord webhook id is a snowflake: digits that fit 64 bits unsigned.
            let schema = if name == "id" && route.path.ends_with("/{id}/{token}") {
                json!({"type": "string", "pattern": "^[0-9]{1,19}$"})
            } else if name == "token" {
                json!({"type": "string", "pattern": "^[A-Za-z0-9_-]{1,100}$"})
            } else if name == "id" {
                json!({"type": "integer", "format": "int64"})
            } else {
                json!({"type": "string"})
            };
            json!({"name": name, "in": "path", "required": true, "schema": schema})
        })
        .collect();
    if let Some(Value::Array(extra)) = op.get("parameters") {
        params.extend(extra.iter().cloned());
    }
    if !params.is_empty() {
        op["parameters"] = Value::Array(params);
    }
    let responses = op["responses"].as_object_mut().expect("responses");
    if route.path.contains("{id}") {
        responses
            .entry("400".to_string())
            .or_insert_with(|| error("The id is not a number"));
    }
    for code in errors {
        responses
            .entry(code.to_string())
            .or_insert_with(|| json!({"$ref": "#/components/responses/Error"}));
    }
    op
}

/// A source's ingest operation: the ingest description with this source's token, scheme and
/// the headers its scheme reads.
fn source_operation(source: &Source) -> Value {
    let mut op = describe("POST", INGEST).expect("the ingest description");
    let scheme = source.verifier.kind();
    op["summary"] = json!(format!(
        "Receive a webhook for source `{}`; 200 only once it is committed to disk",
        source.name
    ));
    op["operationId"] = json!(path_operation_id("POST", &source.path));
    op["tags"] = json!(["ingest"]);
    op["x-hookvault-source"] = json!({
        "name": source.name,
        "processor": source.processor.as_str(),
        "verify": scheme.as_str(),
        "max_body_bytes": source.max_body_bytes
    });
    let mut refusals = Vec::new();
    if source.token.is_some() {
        op["security"] = json!([{"ingestTokenQuery": []}, {"ingestTokenHeader": []}]);
        op["x-hookvault-access"] = json!("ingest token (`?token=` or `X-Webhook-Token`)");
        refusals.push("`token_invalid` (the token is missing or wrong)");
    } else {
        op["security"] = json!([{}]);
        op["x-hookvault-access"] = json!("open (no token for this source)");
    }
    let headers: &[&str] = match scheme {
        SchemeKind::None => &[],
        SchemeKind::StandardWebhooks => &["webhook-id", "webhook-timestamp", "webhook-signature"],
        SchemeKind::Github => &["X-Hub-Signature-256"],
        SchemeKind::Stripe => &["Stripe-Signature"],
        SchemeKind::Shopify => &["X-Shopify-Hmac-Sha256"],
        SchemeKind::HmacSha256 => &[],
    };
    if scheme != SchemeKind::None {
        refusals.push("`signature_missing`, `signature_invalid`");
        if scheme.timestamped() {
            refusals.push("`timestamp_out_of_tolerance`");
        }
        op["description"] = json!(format!(
            "{} The body must be signed with this source's scheme ({}); the signature is \
                checked before anything is stored, and the scheme's delivery id dedupes when \
                no `Idempotency-Key` is sent.",
            op["description"].as_str().unwrap_or(""),
            scheme.as_str()
        ));
    }
    if let Some(Value::Array(params)) = op.get_mut("parameters") {
        for name in headers {
            params.push(json!({"name": name, "in": "header", "required": true,
                "schema": {"type": "string"}, "description": "The sender's signature scheme"}));
        }
    }
    if !refusals.is_empty() {
        op["responses"]["401"] = error(&format!(
            "Refused before anything was stored: {}; kept in the rejections log",
            refusals.join(", ")
        ));
    }
    op["responses"]["413"] = error(&format!(
        "Body larger than this source's max_body_bytes ({}); nothing stored",
        source.max_body_bytes
    ));
    op
}

/// The description every source's ingest operation starts from.
const INGEST: &str = "/api/v2/webhooks/{source}";

fn operation_id(route: &Route) -> String {
    path_operation_id(route.method, route.path)
}

fn path_operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_ascii_lowercase();
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        let seg = seg.trim_start_matches('{').trim_end_matches('}');
        id.push('_');
        id.extend(
            seg.chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
        );
    }
    id
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn ok(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

/// A response with OpenAPI `links` (how a value in it feeds another operation).
fn with_links(mut response: Value, links: Value) -> Value {
    response["links"] = links;
    response
}

fn error(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema_ref("Error")}}})
}

fn query(name: &str, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema})
}

fn limit_param() -> Value {
    query(
        "limit",
        "Page size, 1 to 1000 (default 100); a value outside is answered 400",
        json!({"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}),
    )
}

fn source_param() -> Value {
    query(
        "source",
        "Only this source's (a `[[sources]]` name)",
        json!({"type": "string", "pattern": SOURCE_PATTERN}),
    )
}

fn int64() -> Value {
    json!({"type": "integer", "format": "int64"})
}

/// The parameters, body and answers of each known route (path parameters are added from the
/// pattern by `operation`).
pub fn describe(method: &str, path: &str) -> Option<Value> {
    let states: Vec<&str> = MessageState::ALL.iter().map(|s| s.as_str()).collect();
    let v = match (method, path) {
        ("POST", INGEST) => json!({
            "description": "Stores the body durably (SQLite, synchronous=FULL) before answering. \
                A body that is not valid JSON is still stored and answered 200; it goes to dead \
                letters with the parse error.",
            "parameters": [
                {"name": "Idempotency-Key", "in": "header", "required": false, "schema": {"type": "string", "maxLength": 256},
                 "description": "A key seen before is answered `duplicate` with the first id (also `webhook-id`)"},
                {"name": "webhook-id", "in": "header", "required": false, "schema": {"type": "string", "maxLength": 256}}
            ],
            "requestBody": {
                "required": true,
                "description": "The webhook, stored as bytes whatever its `Content-Type` (1 byte up to \
                    server.max_body_bytes). Checkout bots post Discord webhook JSON (schema \
                    `DiscordWebhook`) as `application/json`; a body that is not JSON is still \
                    stored and answered 200, and goes to dead letters with the parse error, so \
                    the document describes the body as bytes.",
                "content": {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary", "minLength": 1}}
                }
            },
            "responses": {
                "200": ok("Committed to disk (`queued`), or a duplicate of an earlier idempotency key", schema_ref("IngestAnswer")),
                "400": error("An empty body, a `Content-Length` that is not one plain non-negative integer, a body that ends before its `Content-Length`, a header with non-ASCII bytes, or an over-long idempotency key; nothing stored"),
                "408": error("The body did not arrive within server.body_timeout_s; nothing stored"),
                "413": error("Body larger than server.max_body_bytes; nothing stored"),
                "431": error("Request head larger than 64 KiB; nothing stored"),
                "503": {"description": "Cannot store (backlog full, storage error); nothing stored, retry after `Retry-After`",
                        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                        "content": {"application/json": {"schema": schema_ref("Error")}}}
            }
        }),
        ("POST", "/api/webhooks/{id}/{token}")
        | ("POST", "/api/v9/webhooks/{id}/{token}")
        | ("POST", "/api/v10/webhooks/{id}/{token}") => json!({
            "description": "Discord's webhook path (docs/relay.md): the body is stored like any \
                ingest, then relayed unchanged to relay.discord_base at Discord's pace. Only ids \
                in relay.discord_webhook_ids are taken.",
            "parameters": [
                query("wait", "`true`: answer with Discord's own answer when it comes within relay.wait_ms", json!({"type": "string"})),
                query("thread_id", "Relayed to Discord as given", json!({"type": "string"}))
            ],
            "requestBody": {"required": true, "content": {
                "application/json": {"schema": {"type": "object"}},
                "multipart/form-data": {"schema": {"type": "object"}}
            }},
            "responses": {
                "204": {"description": "Committed; it will be relayed"},
                "202": ok("`?wait=true` and Discord did not answer in time: stored and queued", schema_ref("IngestAnswer")),
                "400": error("A malformed id or token, an empty body"),
                "403": error("`relay_not_allowed`: the id is not in relay.discord_webhook_ids; nothing stored"),
                "413": error("Body larger than server.max_body_bytes; nothing stored"),
                "503": error("Cannot store; nothing stored, retry after `Retry-After`")
            }
        }),
        ("GET", "/api/v2/deliveries") => json!({
            "description": "Deliveries newest first, targets masked.",
            "parameters": [
                limit_param(),
                query("before_id", "Only ids below this (use `next_before_id`)", int64()),
                query("state", "pending, delivered, dead or discarded", json!({"type": "string", "enum": ["pending", "delivered", "dead", "discarded"]})),
                query("target", "A masked target as listed", json!({"type": "string"}))
            ],
            "responses": {
                "200": ok("A page of deliveries", json!({"type": "object"})),
                "400": error("A bad query parameter")
            }
        }),
        ("POST", "/api/v2/deliveries/retry-failed") => json!({
            "description": "Every dead delivery is owed again with a fresh attempt budget; dead targets are revived.",
            "responses": {"200": ok("How many", json!({"type": "object", "required": ["requeued"], "properties": {"requeued": {"type": "integer"}}}))}
        }),
        ("POST", "/api/v2/deliveries/{id}/retry") => json!({
            "description": "One dead delivery is owed again; its target is revived.",
            "responses": {
                "200": ok("Owed again", json!({"type": "object"})),
                "404": error("`not_found`: no such delivery; `not_dead`: it exists but is not dead (the message names its state: pending, sending, delivered or discarded)")
            }
        }),
        ("DELETE", "/api/v2/deliveries/{id}") => json!({
            "description": "Gives up a dead or pending delivery (`discarded`). A pending one whose \
                request is in flight is not given up: `409 delivery_in_flight`; once the target \
                has answered it is delivered, or owed again or dead and can be discarded, so \
                try again in a moment.",
            "responses": {
                "200": ok("Discarded", json!({"type": "object"})),
                "404": error("`not_found`: no such delivery; `not_discardable`: it is delivered or discarded already"),
                "409": error("`delivery_in_flight`: its request is in flight; try again in a moment")
            }
        }),
        ("GET", "/api/v2/webhooks/queue/stats") => json!({
            "responses": {"200": ok("Statistics from durable counters and live figures", schema_ref("Stats"))}
        }),
        ("GET", "/api/v2/webhooks/queue/dead-letters") => json!({
            "description": "Dead letters, oldest first.",
            "parameters": [limit_param(), query("after_id", "Only ids above this (use `next_after_id`)", int64()), source_param()],
            "responses": {
                "200": ok("A page of dead letters", schema_ref("DeadLetterPage")),
                "400": error("A bad query parameter")
            }
        }),
        ("POST", "/api/v2/webhooks/queue/retry-failed") => json!({
            "description": "Every dead letter goes back to `queued` with a fresh attempt budget; recorded as an operator action.",
            "responses": {"200": ok("How many were requeued", json!({
                "type": "object", "required": ["requeued"],
                "properties": {"requeued": {"type": "integer"}}
            }))}
        }),
        ("POST", "/api/v2/webhooks/queue/dead-letters/{id}/retry") => json!({
            "description": "One dead letter goes back to `queued`; recorded as an operator action.",
            "responses": {
                "200": ok("Requeued", json!({
                    "type": "object", "required": ["requeued", "id"],
                    "properties": {"requeued": {"type": "integer", "const": 1}, "id": int64()}
                })),
                "404": error("No such message (`not_found`), or it exists but is not dead (`not_dead`, the message names its state)")
            }
        }),
        ("DELETE", "/api/v2/webhooks/queue/dead-letters/{id}") => json!({
            "description": "Marks a dead letter `discarded`; it stays in the audit log. Recorded as an operator action.",
            "responses": {
                "200": ok("Discarded", json!({
                    "type": "object", "required": ["discarded", "id"],
                    "properties": {"discarded": {"type": "integer", "const": 1}, "id": int64()}
                })),
                "404": error("No such message (`not_found`), or it exists but is not dead (`not_dead`, the message names its state)")
            }
        }),
        ("POST", "/api/v2/alerts/test") => json!({
            "description": "Queues a test alert to every `[[alerts]]` target as a durable delivery (formatted for its kind) and answers with each target's delivery id; a target whose alert could not be queued is listed under `failed` with the reason.",
            "responses": {
                "200": ok("What was queued", json!({
                    "type": "object", "required": ["queued", "failed"],
                    "properties": {
                        "queued": {"type": "array", "items": {"type": "object", "required": ["target", "kind", "delivery_id"],
                            "properties": {"target": {"type": "string"}, "kind": {"type": "string"}, "delivery_id": int64()}}},
                        "failed": {"type": "array", "items": {"type": "object", "required": ["target", "kind", "error"],
                            "properties": {"target": {"type": "string"}, "kind": {"type": "string"}, "error": {"type": "string"}}}}
                    }
                })),
                "409": error("No alert target is configured (`no_alert_targets`)"),
                "503": error("No test alert could be queued (`alerts_not_queued`)")
            }
        }),
        ("GET", "/api/v2/webhooks/logs") => json!({
            "description": "The audit trail, newest first.",
            "parameters": [
                limit_param(),
                query("before_id", "Only ids below this (use `next_before_id`)", int64()),
                query("status", "Only messages in this state", json!({"type": "string", "enum": states})),
                source_param()
            ],
            "responses": {
                "200": ok("A page of the audit log", schema_ref("LogPage")),
                "400": error("A bad query parameter (an unknown status names the allowed ones)")
            }
        }),
        ("GET", "/api/v2/webhooks/logs/{id}") => json!({
            "responses": {
                "200": ok("The message", schema_ref("MessageDetail")),
                "404": error("No message with this id")
            }
        }),
        ("GET", "/api/v2/webhooks/rejections") => json!({
            "description": "Webhooks refused by their source's token or signature check (nothing \
                of them was stored), newest first. Bounded: the last `ingest.rejections_kept` \
                rows. Never a body or a secret.",
            "parameters": [
                limit_param(),
                query("before_id", "Only ids below this (use `next_before_id`)", int64()),
                source_param()
            ],
            "responses": {
                "200": ok("A page of the rejections log", json!({
                    "type": "object", "required": ["items", "count"],
                    "properties": {
                        "items": {"type": "array", "items": schema_ref("Rejection")},
                        "count": {"type": "integer"},
                        "next_before_id": {"type": ["integer", "null"], "description": "`before_id` of the next page; null on the last"}
                    }
                })),
                "400": error("A bad query parameter")
            }
        }),
        ("GET", "/api/v2/orders") => json!({
            "parameters": [
                limit_param(),
                query("before_id", "Only ids below this", int64()),
                query("q", "Substring of order number, email or product", json!({"type": "string"})),
                source_param()
            ],
            "responses": {
                "200": with_links(ok("Orders, newest first", json!({
                    "type": "object", "required": ["items"],
                    "properties": {
                        "items": {"type": "array", "items": schema_ref("Order")},
                        "count": {"type": "integer"},
                        "next_before_id": {"type": ["integer", "null"], "description": "`before_id` of the next page; null on the last"}
                    }
                })), json!({
                    "GetFirstOrder": {
                        "operationId": "get_api_v2_orders_order_number",
                        "parameters": {"order_number": "$response.body#/items/0/order_number"},
                        "description": "The first listed order on its own"
                    }
                })),
                "400": error("A bad query parameter")
            }
        }),
        ("GET", "/api/v2/orders.csv") => json!({
            "parameters": [
                query("q", "Substring of order number, email or product", json!({"type": "string"})),
                source_param()
            ],
            "responses": {
                "200": {
                    "description": "Every matching order as CSV (RFC 4180), newest first, streamed",
                    "content": {"text/csv": {"schema": {"type": "string"}}}
                },
                "400": error("A bad query parameter")
            }
        }),
        ("GET", "/api/v2/orders/{order_number}") => json!({
            "responses": {"200": ok("The order", schema_ref("Order")), "404": error("No such order")}
        }),
        ("GET", "/healthz") => json!({
            "responses": {"200": ok("The process is up", json!({
                "type": "object", "properties": {"status": {"type": "string", "const": "ok"}}
            }))}
        }),
        ("GET", "/readyz") => json!({
            "responses": {
                "200": ok("The database is writable and every worker runs", schema_ref("Readiness")),
                "503": ok("Not ready; `reasons` says why", schema_ref("Readiness"))
            }
        }),
        ("GET", "/metrics") => json!({
            "responses": {"200": {
                "description": "Prometheus text exposition format 0.0.4",
                "content": {"text/plain": {"schema": {"type": "string"}}}
            }}
        }),
        ("GET", "/openapi.json") => json!({
            "responses": {"200": ok("This document", json!({"type": "object"}))}
        }),
        ("GET", "/docs") => json!({
            "responses": {"200": {
                "description": "A self-contained HTML page rendering this document",
                "content": {"text/html": {"schema": {"type": "string"}}}
            }}
        }),
        ("GET", "/dashboard") => json!({
            "description": "Stats, latest orders, dead letters (retry, discard) and the live \
                event feed in one self-contained page (no external loads). The page holds no \
                data: it calls the admin API from the browser (asking for the admin token on a \
                401) and the WebSocket on `websocket.listen`.",
            "responses": {"200": {
                "description": "The dashboard page",
                "content": {"text/html": {"schema": {"type": "string"}}}
            }}
        }),
        ("GET", "/favicon.ico") => json!({
            "description": "The icon the dashboard and /docs carry inline, for browsers that \
                ask for /favicon.ico anyway. SVG, whatever the name says.",
            "responses": {"200": {
                "description": "The icon",
                "content": {"image/svg+xml": {"schema": {"type": "string"}}}
            }}
        }),
        _ => return None,
    };
    Some(v)
}

fn schemas() -> Value {
    let states: Vec<&str> = MessageState::ALL.iter().map(|s| s.as_str()).collect();
    let time = json!({"type": "string", "format": "date-time"});
    let opt_time = json!({"type": ["string", "null"], "format": "date-time"});
    let opt_str = json!({"type": ["string", "null"]});
    let summary_props = json!({
        "id": int64(),
        "received_at": time,
        "source": {"type": "string", "description": "The source it came in through"},
        "path": {"type": "string"},
        "remote_addr": opt_str,
        "size": {"type": "integer", "description": "Body size in bytes"},
        "status": {"type": "string", "enum": states},
        "attempts": {"type": "integer"},
        "last_error": opt_str,
        "processed_at": {"type": ["string", "null"], "format": "date-time", "description": "When it finished (processed or dead)"},
        "note": {"type": "string", "description": "e.g. who discarded it"}
    });
    let mut detail_props = summary_props.clone();
    detail_props["headers"] = json!({"type": "object", "additionalProperties": {"type": "string"},
        "description": "Selected request headers (secrets are never stored)"});
    detail_props["payload"] = json!({"type": "string", "description": "The whole body"});
    detail_props["payload_encoding"] = json!({"type": "string", "enum": ["utf-8", "base64"]});
    detail_props["payload_truncated"] =
        json!({"type": "boolean", "description": "Always false here"});
    detail_props["payload_size"] =
        json!({"type": "integer", "description": "The body's size in bytes"});
    detail_props["next_attempt_at"] = opt_time.clone();
    detail_props["actions"] =
        json!({"type": "array", "items": {"$ref": "#/components/schemas/OperatorAction"}});
    let summary_required = json!([
        "id",
        "received_at",
        "path",
        "remote_addr",
        "size",
        "status",
        "attempts",
        "last_error",
        "processed_at"
    ]);
    let num = json!({"type": "number"});
    let int = json!({"type": "integer"});
    let mut m = Map::new();
    m.insert(
        "Error".into(),
        json!({
            "type": "object", "required": ["error", "message"],
            "properties": {
                "error": {"type": "string", "description": "A stable code, e.g. `not_found`"},
                "message": {"type": "string", "description": "What happened and what to do"}
            }
        }),
    );
    m.insert("IngestAnswer".into(), json!({
        "type": "object", "required": ["status", "id"],
        "properties": {"status": {"type": "string", "enum": ["queued", "duplicate"]}, "id": int64()}
    }));
    m.insert("DiscordWebhook".into(), json!({
        "type": "object",
        "description": "Discord webhook JSON; order values come from `embeds[].description` lines or `embeds[].fields`",
        "properties": {
            "content": {"type": "string"},
            "username": {"type": "string"},
            "embeds": {"type": "array", "items": {"type": "object", "properties": {
                "title": {"type": "string"},
                "description": {"type": "string"},
                "author": {"type": "object", "properties": {"name": {"type": "string"}}},
                "fields": {"type": "array", "items": {"type": "object", "properties": {
                    "name": {"type": "string"}, "value": {"type": "string"}}}},
                "footer": {"type": "object", "properties": {"text": {"type": "string"}}}
            }}}
        }
    }));
    // The fields every version has answered, then the extras (two literals: one would pass
    // serde_json's macro recursion limit).
    let mut properties = json!({
            "status": {"type": "string", "enum": ["healthy", "degraded", "unhealthy"]},
            "status_reasons": {"type": "array", "items": {"type": "string"}},
            "queue_size": int, "queue_size_peak": int, "total_received": int,
            "total_processed": int,
            "total_failed": {"type": "integer", "description": "Messages in dead letters now or discarded, each once"},
            "dead_letter_queue_size": int, "workers_running": int, "workers_total": int,
            "avg_processing_time_ms": num, "is_running": {"type": "boolean"},
            "success_rate": {"type": "number", "description": "Percent of finished messages that ended processed, each message once"},
            "recent_success_rate": {"type": "number", "description": "The same over messages finished in the last 15 minutes"},
            "recent_finished": int
    });
    let extras = json!({
            "in_flight": int, "received_per_s": num, "queued": int, "channel_len": int,
            "channel_capacity": int, "total_duplicates": int, "total_retried": int,
            "total_requeued": int, "total_discarded": int, "total_orders": int, "rejected": int,
            "total_leases_expired": int, "stale_leases": int, "oldest_processing_age_s": int,
            "uptime_s": int, "ack_latency_p50_ms": num, "ack_latency_p99_ms": num,
            "processing_time_p50_ms": num, "processing_time_p99_ms": num, "avg_batch_size": num,
            "db_size_bytes": {"type": ["integer", "null"], "description": "The database's size; null when unknown"},
            "wal_size_bytes": {"type": ["integer", "null"], "description": "SQLite's write-ahead log; null on PostgreSQL"},
            "version": {"type": "string"},
            "sources": {"type": "object", "description": "Per source: durable totals",
                "additionalProperties": schema_ref("SourceFigures")}
    });
    if let (Some(p), Value::Object(e)) = (properties.as_object_mut(), extras) {
        p.extend(e);
    }
    m.insert("Stats".into(), json!({
        "type": "object",
        "required": ["status", "queue_size", "queue_size_peak", "total_received", "total_processed",
            "total_failed", "dead_letter_queue_size", "workers_running", "workers_total",
            "avg_processing_time_ms", "is_running", "success_rate"],
        "properties": properties
    }));
    m.insert("DeadLetter".into(), json!({
        "type": "object",
        "required": ["id", "received_at", "attempts", "last_error", "failed_at", "payload", "payload_encoding",
                     "payload_truncated", "payload_size"],
        "properties": {
            "id": int64(), "received_at": time, "source": {"type": "string"}, "attempts": int,
            "last_error": opt_str, "failed_at": opt_time,
            "payload": {"type": "string", "description": "A preview: the first 256 bytes of the body (a UTF-8 character cut at the end is left out); the whole body is in GET /api/v2/webhooks/logs/{id}"},
            "payload_encoding": {"type": "string", "enum": ["utf-8", "base64"]},
            "payload_truncated": {"type": "boolean", "description": "True when `payload` is shorter than the body"},
            "payload_size": {"type": "integer", "description": "The whole body's size in bytes"}
        }
    }));
    m.insert("DeadLetterPage".into(), json!({
        "type": "object", "required": ["items", "count"],
        "properties": {
            "items": {"type": "array", "items": schema_ref("DeadLetter")},
            "count": {"type": "integer", "description": "Items in this page"},
            "total": {"type": "integer", "description": "Dead letters now"},
            "next_after_id": {"type": ["integer", "null"], "description": "`after_id` of the next page; null on the last"}
        }
    }));
    m.insert(
        "MessageSummary".into(),
        json!({"type": "object", "required": summary_required, "properties": summary_props}),
    );
    m.insert(
        "MessageDetail".into(),
        json!({"type": "object", "required": summary_required, "properties": detail_props}),
    );
    m.insert(
        "OperatorAction".into(),
        json!({
            "type": "object",
            "properties": {
                "at": time, "action": {"type": "string", "enum": ["retry", "discard"]},
                "actor": {"type": "string"}, "affected": int
            }
        }),
    );
    m.insert("LogPage".into(), json!({
        "type": "object", "required": ["items"],
        "properties": {
            "items": {"type": "array", "items": schema_ref("MessageSummary")},
            "count": int,
            "next_before_id": {"type": ["integer", "null"], "description": "`before_id` of the next page; null on the last"}
        }
    }));
    m.insert("Order".into(), json!({
        "type": "object",
        "properties": {
            "id": int64(), "message_id": int64(), "source_path": {"type": "string"},
            "created_at": time, "updated_at": opt_time,
            "order_number": {"type": "string"}, "product": opt_str,
            "amount_cents": {"type": ["integer", "null"]}, "currency": opt_str, "email": opt_str,
            "size": opt_str, "site": opt_str, "quantity": int, "profile": opt_str, "title": opt_str,
            "fields": {"type": "object", "additionalProperties": {"type": "string"}}
        }
    }));
    m.insert("SourceFigures".into(), json!({
        "type": "object", "required": ["received", "processed", "failed", "dead", "rejected"],
        "properties": {
            "received": {"type": "integer", "description": "Webhooks stored"},
            "processed": {"type": "integer"},
            "failed": {"type": "integer", "description": "Failed attempts (retried or dead)"},
            "dead": {"type": "integer", "description": "Messages that went to dead letters"},
            "rejected": {"type": "integer", "description": "Refused by the token or signature check"}
        }
    }));
    m.insert("Rejection".into(), json!({
        "type": "object", "required": ["id", "at", "source", "remote_addr", "reason", "size"],
        "properties": {
            "id": int64(), "at": time, "source": {"type": "string"},
            "remote_addr": opt_str,
            "reason": {"type": "string", "enum": ["signature_missing", "signature_invalid", "timestamp_out_of_tolerance", "token_invalid"]},
            "size": {"type": "integer", "description": "The body's size in bytes (declared, when it was not read)"}
        }
    }));
    m.insert(
        "Readiness".into(),
        json!({
            "type": "object", "required": ["status"],
            "properties": {
                "status": {"type": "string", "enum": ["ready", "not_ready"]},
                "reasons": {"type": "array", "items": {"type": "string"}}
            }
        }),
    );
    Value::Object(m)
}
