//! The OpenAPI document and the small unauthenticated endpoints.

use serde::Serialize;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::error::{ApiJson, ErrorBody};

/// Base document; paths are added by `OpenApiRouter` from the handlers themselves, so the
/// document cannot drift from the router.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Porta API",
        description = "Porta reference backend: passwordless sign-in, the resident's profile, door credentials for the Porta door protocol, the access log, and the resident's privacy rights (data, export, consents, deletion)."
    ),
    modifiers(&BearerAuth),
    components(schemas(ErrorBody)),
    tags(
        (name = "auth", description = "Sign-in with one-time codes and session tokens"),
        (name = "profile", description = "The signed-in resident's own profile"),
        (name = "devices", description = "Device keys and signed-in devices"),
        (name = "doors", description = "The resident's doors and credentials"),
        (name = "access", description = "Access events from locks and the resident's access log"),
        (name = "privacy", description = "The resident's data, export, consents and account deletion"),
        (name = "admin", description = "The building's administration: sites, units, doors, residents, grants, roles and the security-event log. No admin role: `403`; another site's ids: `404`"),
        (name = "partner", description = "The partner API: a site's people (name and pseudonymous id) and its doors' access log, read-only, with a partner key (`Authorization: Bearer porta_pk_…`) made by the site's admin"),
        (name = "dev", description = "Development helpers, only when enabled"),
        (name = "meta", description = "Health and documentation"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
        // Also sent as a bearer token, but a different credential: a site's partner key.
        let mut partner = Http::new(HttpAuthScheme::Bearer);
        partner.bearer_format = Some("porta_pk_".to_owned());
        partner.description = Some("A partner key of one site, made by its admin".to_owned());
        components.add_security_scheme("partner_key", SecurityScheme::Http(partner));
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: String,
}

/// Liveness check.
#[utoipa::path(
    get,
    path = "/health",
    tag = "meta",
    responses((status = 200, description = "Server is up", body = Health))
)]
pub async fn health() -> ApiJson<Health> {
    ApiJson(Health { status: "ok".into() })
}
