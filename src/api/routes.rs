//! The route table. It is data, not a `match`, so the OpenAPI document and its test can be
//! checked against exactly the routes the server answers. It is the one module that knows
//! every handler; handlers know nothing of it.

use super::call::Call;
use super::openapi::AuthMode;
use super::response::Reply;
use super::route::{find, Access, Match, Route};
use super::state::AppState;
use super::{
    alerts, dashboard, dead_letters, deliveries, discord_relay, favicon, health, logs, openapi,
    orders, rejections,
};
use crate::settings::sources::SourceList;

/// Every route but the ingest paths, which come from the configured sources (the router
/// looks them up first; `check_source_paths` keeps the two apart).
pub const ROUTES: &[Route] = &[
    Route {
        method: "POST",
        path: "/api/webhooks/{id}/{token}",
        access: Access::Open,
        handler: discord_relay::execute,
        summary: "Discord's webhook path: stored, then relayed to Discord at its pace",
    },
    Route {
        method: "POST",
        path: "/api/v9/webhooks/{id}/{token}",
        access: Access::Open,
        handler: discord_relay::execute,
        summary: "Discord's webhook path (API v9 spelling)",
    },
    Route {
        method: "POST",
        path: "/api/v10/webhooks/{id}/{token}",
        access: Access::Open,
        handler: discord_relay::execute,
        summary: "Discord's webhook path (API v10 spelling)",
    },
    Route {
        method: "GET",
        path: "/api/v2/deliveries",
        access: Access::Admin,
        handler: deliveries::list,
        summary: "Deliveries, newest first; ?state=, ?target=, ?limit=, ?before_id=",
    },
    Route {
        method: "POST",
        path: "/api/v2/deliveries/retry-failed",
        access: Access::Admin,
        handler: deliveries::retry_failed,
        summary: "Every dead delivery is owed again (dead targets revived)",
    },
    Route {
        method: "POST",
        path: "/api/v2/deliveries/{id}/retry",
        access: Access::Admin,
        handler: deliveries::retry_one,
        summary: "One dead delivery is owed again (its target revived)",
    },
    Route {
        method: "DELETE",
        path: "/api/v2/deliveries/{id}",
        access: Access::Admin,
        handler: deliveries::discard,
        summary: "Give up a dead or pending delivery",
    },
    Route {
        method: "GET",
        path: "/api/v2/webhooks/queue/stats",
        access: Access::Admin,
        handler: health::stats,
        summary: "Queue statistics from durable counters",
    },
    Route {
        method: "GET",
        path: "/api/v2/webhooks/queue/dead-letters",
        access: Access::Admin,
        handler: dead_letters::list,
        summary: "Dead letters, oldest first, paged by after_id",
    },
    Route {
        method: "POST",
        path: "/api/v2/webhooks/queue/retry-failed",
        access: Access::Admin,
        handler: dead_letters::retry_failed,
        summary: "Requeue every dead letter",
    },
    Route {
        method: "POST",
        path: "/api/v2/webhooks/queue/dead-letters/{id}/retry",
        access: Access::Admin,
        handler: dead_letters::retry_one,
        summary: "Requeue one dead letter",
    },
    Route {
        method: "DELETE",
        path: "/api/v2/webhooks/queue/dead-letters/{id}",
        access: Access::Admin,
        handler: dead_letters::discard,
        summary: "Discard one dead letter (it stays in the audit log)",
    },
    Route {
        method: "POST",
        path: "/api/v2/alerts/test",
        access: Access::Admin,
        handler: alerts::test,
        summary: "Send a test alert to every alert target",
    },
    Route {
        method: "GET",
        path: "/api/v2/webhooks/logs",
        access: Access::Admin,
        handler: logs::list,
        summary: "The audit log, newest first, paged by before_id, filtered by status",
    },
    Route {
        method: "GET",
        path: "/api/v2/webhooks/logs/{id}",
        access: Access::Admin,
        handler: logs::one,
        summary: "One message whole: state, attempts, headers and payload",
    },
    Route {
        method: "GET",
        path: "/api/v2/webhooks/rejections",
        access: Access::Admin,
        handler: rejections::list,
        summary: "Webhooks refused by their source's token or signature check, newest first",
    },
    Route {
        method: "GET",
        path: "/api/v2/orders",
        access: Access::Admin,
        handler: orders::list,
        summary: "Orders, newest first; ?limit=, ?before_id=, ?q= (order number, email or product)",
    },
    Route {
        method: "GET",
        path: "/api/v2/orders.csv",
        access: Access::Admin,
        handler: orders::csv_export,
        summary: "Every order as CSV for spreadsheets; ?q= filters",
    },
    Route {
        method: "GET",
        path: "/api/v2/orders/{order_number}",
        access: Access::Admin,
        handler: orders::one,
        summary: "One order by its order number",
    },
    Route {
        method: "GET",
        path: "/healthz",
        access: Access::Open,
        handler: health::healthz,
        summary: "Liveness: 200 while the process is up",
    },
    Route {
        method: "GET",
        path: "/readyz",
        access: Access::Open,
        handler: health::readyz,
        summary: "Readiness: 200 when the database is writable and every worker runs, else 503",
    },
    Route {
        method: "GET",
        path: "/metrics",
        access: Access::Admin,
        handler: health::metrics,
        summary: "Prometheus metrics: counters, gauges, latency histograms",
    },
    Route {
        method: "GET",
        path: "/openapi.json",
        access: Access::Admin,
        handler: openapi_json,
        summary: "This API as an OpenAPI 3.1 document",
    },
    Route {
        method: "GET",
        path: "/docs",
        access: Access::Admin,
        handler: docs,
        summary: "The API documentation as a self-contained HTML page",
    },
    Route {
        method: "GET",
        path: "/dashboard",
        access: Access::Open,
        handler: dashboard::page,
        summary: "A small self-contained operator dashboard (it reads the admin API)",
    },
    Route {
        method: "GET",
        path: "/favicon.ico",
        access: Access::Open,
        handler: favicon::icon,
        summary: "The pages' icon (SVG)",
    },
];

/// Start-up refuses a source whose path a built-in route answers (with any method): the
/// source would hide the route, or the route the source. Names the source's key.
pub fn check_source_paths(sources: &SourceList) -> Result<(), String> {
    for (i, source) in sources.iter().enumerate() {
        for method in ["GET", "POST", "DELETE"] {
            if let Match::Found(route, _) = find(ROUTES, method, &source.path) {
                return Err(format!(
                    "sources[{i}].path (source {:?}): {} is the built-in route {} {}; pick another path, e.g. /api/v2/webhooks/in/{}",
                    source.name, source.path, route.method, route.path, source.name
                ));
            }
        }
    }
    Ok(())
}

/// The OpenAPI document of [`ROUTES`] and the configured sources as JSON text. Built per
/// request: it depends on the configuration, and only operators ask for it.
fn document_json(state: &AppState) -> String {
    openapi::document(ROUTES, &state.sources, AuthMode::of(&state.settings)).to_string()
}

/// `GET /openapi.json`.
fn openapi_json(state: &AppState, _call: &mut Call) -> Reply {
    Reply::text(200, "application/json", document_json(state))
}

/// `GET /docs`: the page with the document embedded, so one request (or a saved copy) has
/// everything.
fn docs(state: &AppState, _call: &mut Call) -> Reply {
    Reply::text(
        200,
        "text/html; charset=utf-8",
        openapi::docs_page(&document_json(state)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::openapi::{describe, document};
    use crate::settings::sources::SourceSettings;
    use serde_json::json;

    /// The built-in `orders` source, with or without an ingest token.
    fn orders(token: bool) -> SourceList {
        SourceList::new(&[], token.then_some("t"), 1000).unwrap()
    }

    #[test]
    fn every_route_has_its_own_description() {
        for r in ROUTES {
            assert!(
                describe(r.method, r.path).is_some(),
                "{} {} has no OpenAPI description in src/api/openapi.rs",
                r.method,
                r.path
            );
        }
    }

    const TOKENS: AuthMode = AuthMode {
        admin_token: true,
        ingest_token: true,
    };
    const NO_TOKENS: AuthMode = AuthMode {
        admin_token: false,
        ingest_token: false,
    };

    #[test]
    fn path_parameters_follow_the_pattern() {
        let doc = document(ROUTES, &orders(true), TOKENS);
        let op = &doc["paths"]["/api/v2/webhooks/logs/{id}"]["get"];
        assert_eq!(op["parameters"][0]["name"], "id");
        assert_eq!(op["parameters"][0]["in"], "path");
    }

    #[test]
    fn security_follows_the_configured_tokens() {
        let stats = "/api/v2/webhooks/queue/stats";
        let ingest = "/api/v2/webhooks/orders";

        let doc = document(ROUTES, &orders(true), TOKENS);
        let op = &doc["paths"][stats]["get"];
        assert_eq!(op["security"], json!([{"adminBearer": []}]));
        assert!(op["responses"]["401"].is_object() && op["responses"]["403"].is_null());
        let op = &doc["paths"][ingest]["post"];
        assert_eq!(
            op["security"],
            json!([{"ingestTokenQuery": []}, {"ingestTokenHeader": []}])
        );
        assert!(op["responses"]["401"].is_object());

        // No admin token: loopback clients need nothing, others get 403 (never 401).
        let doc = document(ROUTES, &orders(false), NO_TOKENS);
        let op = &doc["paths"][stats]["get"];
        assert_eq!(op["security"], json!([{}]));
        assert!(op["responses"]["403"].is_object() && op["responses"]["401"].is_null());
        assert!(op["x-hookvault-access"]
            .as_str()
            .unwrap()
            .contains("loopback"));
        assert!(doc["info"]["description"]
            .as_str()
            .unwrap()
            .contains("loopback"));
        let op = &doc["paths"][ingest]["post"];
        assert_eq!(op["security"], json!([{}]));
        assert!(op["responses"]["401"].is_null());
    }

    #[test]
    fn limits_and_bodies_are_bounded_in_the_document() {
        let doc = document(ROUTES, &orders(false), NO_TOKENS);
        for path in [
            "/api/v2/webhooks/logs",
            "/api/v2/webhooks/queue/dead-letters",
            "/api/v2/orders",
        ] {
            let params = doc["paths"][path]["get"]["parameters"].as_array().unwrap();
            let limit = params.iter().find(|p| p["name"] == "limit").unwrap();
            assert_eq!(limit["schema"]["maximum"], 1000, "{path}");
            assert_eq!(limit["schema"]["minimum"], 1, "{path}");
        }
        let body = &doc["paths"]["/api/v2/webhooks/orders"]["post"]["requestBody"];
        assert_eq!(body["required"], true);
        // The orders list links to one order, by an operation that exists.
        let link =
            &doc["paths"]["/api/v2/orders"]["get"]["responses"]["200"]["links"]["GetFirstOrder"];
        assert_eq!(
            link["operationId"],
            doc["paths"]["/api/v2/orders/{order_number}"]["get"]["operationId"]
        );
    }

    #[test]
    fn every_source_has_its_ingest_operation() {
        let tables: Vec<SourceSettings> = vec![
            toml::from_str("name = \"orders\"").unwrap(),
            toml::from_str("name = \"gh\"\nverify = \"github\"\nsecrets = [\"s\"]\ntoken = \"t\"")
                .unwrap(),
        ];
        let sources = SourceList::new(&tables, None, 1000).unwrap();
        let doc = document(ROUTES, &sources, NO_TOKENS);
        let orders = &doc["paths"]["/api/v2/webhooks/orders"]["post"];
        assert_eq!(orders["operationId"], "post_api_v2_webhooks_orders");
        assert!(orders["responses"]["401"].is_null());
        let gh = &doc["paths"]["/api/v2/webhooks/in/gh"]["post"];
        assert_eq!(gh["x-hookvault-source"]["verify"], "github");
        assert!(gh["responses"]["401"]["description"]
            .as_str()
            .unwrap()
            .contains("signature_invalid"));
        assert_eq!(
            gh["security"],
            json!([{"ingestTokenQuery": []}, {"ingestTokenHeader": []}])
        );
        let params = gh["parameters"].as_array().unwrap();
        assert!(params.iter().any(|p| p["name"] == "X-Hub-Signature-256"));
    }

    #[test]
    fn a_source_cannot_take_a_builtin_path() {
        let tables: Vec<SourceSettings> = vec![
            toml::from_str("name = \"a\"").unwrap(),
            toml::from_str("name = \"b\"\npath = \"/api/v2/webhooks/logs/7\"").unwrap(),
        ];
        let sources = SourceList::new(&tables, None, 1000).unwrap();
        let e = check_source_paths(&sources).unwrap_err();
        assert!(
            e.starts_with("sources[1].path") && e.contains("/api/v2/webhooks/logs/{id}"),
            "{e}"
        );
        assert!(check_source_paths(&orders(false)).is_ok());
    }
}
