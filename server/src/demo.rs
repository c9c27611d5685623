//! The demo building: one site (in Oslo time: UTC+1, summer time by
//! the EU rule), two units, three numbered doors, a resident granted all three doors, and its
//! site admin ([`crate::DEMO_ADMIN_EMAIL`]). Safe to run on every start: fixed ids for the
//! building, and keys, the resident and the grant are only created if missing.
//!
//! The doors have no locks: a lock's key is born in the lock, so whoever runs the simulated
//! locks (the demo runner, the tests) makes them and has the site admin provision them through
//! `POST /v1/admin/sites/{site_id}/doors/{door_id}/lock`, as a building does.

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::ApiError;
use crate::{DEMO_ADMIN_EMAIL, DEMO_RESIDENT_EMAIL};

pub(crate) const SITE_ID: &str = "5e7d1c2a-0000-4000-8000-000000000001";
const APARTMENT_ID: &str = "5e7d1c2a-0000-4000-8000-000000000101";
const OFFICE_ID: &str = "5e7d1c2a-0000-4000-8000-000000000102";
/// (id, name, door number, log retention days).
const DOORS: &[(&str, &str, u32, i64)] = &[
    ("5e7d1c2a-0000-4000-8000-000000000201", "Main entrance", 1, 30),
    ("5e7d1c2a-0000-4000-8000-000000000202", "Bike room", 2, 90),
    ("5e7d1c2a-0000-4000-8000-000000000203", "Roof terrace", 3, 7),
];
/// The demo resident's grants never end (2100-01-01).
pub const FOREVER: i64 = 4_102_444_800;
const DEMO_RESIDENT_NAME: &str = "Ada Resident";
const DEMO_RESIDENT_PHONE: &str = "+4790000001";

pub fn seed(conn: &mut Connection, now: i64) -> Result<(), ApiError> {
    let tx = conn.transaction()?;
    tx.execute(
        "INSERT OR IGNORE INTO sites (id, name, address, utc_offset_minutes, dst_rule)
         VALUES (?1, 'Demo Building', 'Storgata 1', 60, 'eu')",
        [SITE_ID],
    )?;
    for (id, name, kind) in [(APARTMENT_ID, "Apartment 4B", "apartment"), (OFFICE_ID, "Office 2", "office")] {
        tx.execute(
            "INSERT OR IGNORE INTO units (id, site_id, name, kind) VALUES (?1, ?2, ?3, ?4)",
            params![id, SITE_ID, name, kind],
        )?;
    }
    for (id, name, number, retention) in DOORS {
        tx.execute(
            "INSERT OR IGNORE INTO doors (id, site_id, name, number, log_retention_days)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, SITE_ID, name, number, retention],
        )?;
        // Databases seeded before doors had numbers.
        tx.execute(
            "UPDATE doors SET number = ?2, log_retention_days = ?3 WHERE id = ?1 AND number IS NULL",
            params![id, number, retention],
        )?;
    }
    let exists =
        tx.query_row("SELECT 1 FROM users WHERE email = ?1", [DEMO_RESIDENT_EMAIL], |_| Ok(())).optional()?.is_some();
    if !exists {
        let user_id = uuid::Uuid::new_v4().to_string();
        tx.execute(
            "INSERT INTO users (id, name, email, phone, unit_id, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
            params![user_id, DEMO_RESIDENT_NAME, DEMO_RESIDENT_EMAIL, DEMO_RESIDENT_PHONE, APARTMENT_ID, now],
        )?;
    }
    let user_id: String = tx.query_row("SELECT id FROM users WHERE email = ?1", [DEMO_RESIDENT_EMAIL], |r| r.get(0))?;
    let has_grants = tx
        .query_row("SELECT 1 FROM door_grants WHERE user_id = ?1 LIMIT 1", [&user_id], |_| Ok(()))
        .optional()?
        .is_some();
    if !has_grants {
        for (_, _, number, _) in DOORS {
            tx.execute(
                "INSERT INTO door_grants (id, user_id, door_number, not_before, not_after,
                                          schedule_json, created_at)
                 VALUES (?1, ?2, ?3, 0, ?4, NULL, ?5)",
                params![uuid::Uuid::new_v4().to_string(), user_id, number, FOREVER, now],
            )?;
        }
    }
    // The building's administrator, who signs in like everyone else.
    let admin = crate::identity::Identifier::parse(DEMO_ADMIN_EMAIL)
        .ok_or_else(|| ApiError::Internal("demo admin email".into()))?;
    crate::admin::sqlite::make_site_admin(&tx, SITE_ID, &admin, now)?;
    tx.commit()?;
    Ok(())
}

/// [`seed`] on PostgreSQL: the same building, resident and admin, safe on every start of
/// every instance (several starting at once take turns on an advisory lock).
#[cfg(feature = "postgres")]
pub async fn seed_postgres(pool: &crate::pg::PgPool, now: i64) -> Result<(), ApiError> {
    /// Any key: instances seeding at once take turns.
    const SEED_LOCK: i64 = 0x706f_7274_615f_6465; // "porta_de"
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SEED_LOCK]).await?;
    tx.execute(
        "INSERT INTO sites (id, name, address, utc_offset_minutes, dst_rule)
         VALUES ($1, 'Demo Building', 'Storgata 1', 60, 'eu') ON CONFLICT (id) DO NOTHING",
        &[&SITE_ID],
    )
    .await?;
    for (id, name, kind) in [(APARTMENT_ID, "Apartment 4B", "apartment"), (OFFICE_ID, "Office 2", "office")] {
        tx.execute(
            "INSERT INTO units (id, site_id, name, kind) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
            &[&id, &SITE_ID, &name, &kind],
        )
        .await?;
    }
    for (id, name, number, retention) in DOORS {
        tx.execute(
            "INSERT INTO doors (id, site_id, name, number, log_retention_days)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
            &[id, &SITE_ID, name, &i64::from(*number), retention],
        )
        .await?;
    }
    tx.execute(
        "INSERT INTO users (id, name, email, phone, unit_id, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (email) DO NOTHING",
        &[
            &uuid::Uuid::new_v4().to_string(),
            &DEMO_RESIDENT_NAME,
            &DEMO_RESIDENT_EMAIL,
            &DEMO_RESIDENT_PHONE,
            &APARTMENT_ID,
            &now,
        ],
    )
    .await?;
    let user_id: String = tx.query_one("SELECT id FROM users WHERE email = $1", &[&DEMO_RESIDENT_EMAIL]).await?.get(0);
    let has_grants = tx.query_opt("SELECT 1 FROM door_grants WHERE user_id = $1 LIMIT 1", &[&user_id]).await?;
    if has_grants.is_none() {
        for (_, _, number, _) in DOORS {
            tx.execute(
                "INSERT INTO door_grants (id, user_id, door_number, not_before, not_after, schedule_json, created_at)
                 VALUES ($1, $2, $3, 0, $4, NULL, $5)",
                &[&uuid::Uuid::new_v4().to_string(), &user_id, &i64::from(*number), &FOREVER, &now],
            )
            .await?;
        }
    }
    let admin = crate::identity::Identifier::parse(DEMO_ADMIN_EMAIL)
        .ok_or_else(|| ApiError::Internal("demo admin email".into()))?;
    crate::admin::postgres::make_site_admin(&tx, SITE_ID, &admin, now).await?;
    tx.commit().await?;
    Ok(())
}
