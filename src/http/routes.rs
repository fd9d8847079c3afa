//! The route table. It is data, not a `match`, so the OpenAPI document and its test can be
//! checked against exactly the routes the server answers. It is the one module that knows
//! every handler; handlers know nothing of it.

use std::sync::OnceLock;

use super::call::Call;
use super::openapi::AuthMode;
use super::response::Reply;
use super::route::{Access, Route};
use super::state::AppState;
use super::{alerts, dashboard, dead_letters, favicon, health, intake, logs, openapi, orders};

pub const ROUTES: &[Route] = &[
    Route {
        method: "POST",
        path: "/api/v2/webhooks/orders",
        access: Access::Ingest,
        handler: intake::receive,
        summary: "Receive a webhook; 200 only once it is committed to disk",
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

/// The OpenAPI document of [`ROUTES`] as JSON text for a server with `mode`'s credentials,
/// built once per mode.
fn document_json(mode: AuthMode) -> &'static str {
    static DOCS: [OnceLock<String>; 4] = [const { OnceLock::new() }; 4];
    DOCS[mode.slot()].get_or_init(|| openapi::document(ROUTES, mode).to_string())
}

/// `GET /openapi.json`.
fn openapi_json(state: &AppState, _call: &mut Call) -> Reply {
    let mode = AuthMode::of(&state.settings);
    Reply::text(200, "application/json", document_json(mode))
}

/// `GET /docs`: the page with the document embedded, so one request (or a saved copy) has
/// everything.
fn docs(state: &AppState, _call: &mut Call) -> Reply {
    static PAGES: [OnceLock<String>; 4] = [const { OnceLock::new() }; 4];
    let mode = AuthMode::of(&state.settings);
    let page = PAGES[mode.slot()].get_or_init(|| openapi::docs_page(document_json(mode)));
    Reply::text(200, "text/html; charset=utf-8", page.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::openapi::{describe, document};
    use serde_json::json;

    #[test]
    fn every_route_has_its_own_description() {
        for r in ROUTES {
            assert!(
                describe(r.method, r.path).is_some(),
                "{} {} has no OpenAPI description in src/http/openapi.rs",
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
        let doc = document(ROUTES, TOKENS);
        let op = &doc["paths"]["/api/v2/webhooks/logs/{id}"]["get"];
        assert_eq!(op["parameters"][0]["name"], "id");
        assert_eq!(op["parameters"][0]["in"], "path");
    }

    #[test]
    fn security_follows_the_configured_tokens() {
        let stats = "/api/v2/webhooks/queue/stats";
        let ingest = "/api/v2/webhooks/orders";

        let doc = document(ROUTES, TOKENS);
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
        let doc = document(ROUTES, NO_TOKENS);
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
        let doc = document(ROUTES, NO_TOKENS);
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
}
