//! Changes made to the assembled document that utoipa's attributes cannot express: the bearer
//! security scheme, request bodies that need at least one field, closed variants of tagged
//! request enums. Kept apart from the base document so each reads as one small rule.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::RefOr;
use utoipa::Modify;

pub(super) struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Request bodies whose fields are all optional but of which the server needs at least one
/// (`#[schema(min_properties = 1)]` renders as `maxProperties` in utoipa 5.5, so it is set here).
const AT_LEAST_ONE_FIELD: &[&str] = &["UpdateConnectionRequest"];

pub(super) struct AtLeastOneField;

impl Modify for AtLeastOneField {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        for name in AT_LEAST_ONE_FIELD {
            if let Some(RefOr::T(utoipa::openapi::schema::Schema::Object(o))) =
                components.schemas.get_mut(*name)
            {
                o.min_properties = Some(1);
            }
        }
    }
}

/// Internally tagged request enums with `deny_unknown_fields`: utoipa leaves their variants
/// open, the server refuses any other field, so each variant is closed here.
const CLOSED_VARIANTS: &[&str] = &["SendMessageRequest"];

pub(super) struct ClosedVariants;

impl Modify for ClosedVariants {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::schema::{AdditionalProperties, Schema};
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        for name in CLOSED_VARIANTS {
            if let Some(RefOr::T(Schema::OneOf(one_of))) = components.schemas.get_mut(*name) {
                for item in one_of.items.iter_mut() {
                    if let RefOr::T(Schema::Object(o)) = item {
                        o.additional_properties =
                            Some(Box::new(AdditionalProperties::FreeForm(false)));
                    }
                }
            }
        }
    }
}
