//! The demo building: one site, two units, three doors, and a resident. Safe to run on every
//! start: fixed ids for the building, and the resident is only created if missing.

use rusqlite::{params, Connection, OptionalExtension};

use crate::DEMO_RESIDENT_EMAIL;

const SITE_ID: &str = "5e7d1c2a-0000-4000-8000-000000000001";
const APARTMENT_ID: &str = "5e7d1c2a-0000-4000-8000-000000000101";
const OFFICE_ID: &str = "5e7d1c2a-0000-4000-8000-000000000102";
const DOORS: &[(&str, &str)] = &[
    ("5e7d1c2a-0000-4000-8000-000000000201", "Main entrance"),
    ("5e7d1c2a-0000-4000-8000-000000000202", "Bike room"),
    ("5e7d1c2a-0000-4000-8000-000000000203", "Roof terrace"),
];
const DEMO_RESIDENT_NAME: &str = "Ada Resident";
const DEMO_RESIDENT_PHONE: &str = "+4790000001";

pub fn seed(conn: &mut Connection, now: i64) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    tx.execute(
        "INSERT OR IGNORE INTO sites (id, name, address) VALUES (?1, 'Demo Building', 'Storgata 1')",
        [SITE_ID],
    )?;
    for (id, name, kind) in [
        (APARTMENT_ID, "Apartment 4B", "apartment"),
        (OFFICE_ID, "Office 2", "office"),
    ] {
        tx.execute(
            "INSERT OR IGNORE INTO units (id, site_id, name, kind) VALUES (?1, ?2, ?3, ?4)",
            params![id, SITE_ID, name, kind],
        )?;
    }
    for (id, name) in DOORS {
        tx.execute(
            "INSERT OR IGNORE INTO doors (id, site_id, name) VALUES (?1, ?2, ?3)",
            params![id, SITE_ID, name],
        )?;
    }
    let exists = tx
        .query_row(
            "SELECT 1 FROM users WHERE email = ?1",
            [DEMO_RESIDENT_EMAIL],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    if !exists {
        tx.execute(
            "INSERT INTO users (id, name, email, phone, unit_id, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
            params![
                uuid::Uuid::new_v4().to_string(),
                DEMO_RESIDENT_NAME,
                DEMO_RESIDENT_EMAIL,
                DEMO_RESIDENT_PHONE,
                APARTMENT_ID,
                now
            ],
        )?;
    }
    tx.commit()
}
