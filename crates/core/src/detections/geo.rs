//! Where a client address is: a MaxMind-format City database (`PALISADE_GEOIP_DB`, read with
//! the `maxminddb` crate), for the geographic rules (`impossible_travel`, `new_country`) and the
//! country check of `api_key_new_address`. Without a database those rules are off.

use std::net::IpAddr;
use std::path::Path;

/// A loaded City database (read into memory once, at start).
pub struct GeoDb {
    reader: maxminddb::Reader<Vec<u8>>,
}

/// What the database says about an address.
#[derive(Debug, Clone, PartialEq)]
pub struct Place {
    /// ISO 3166-1 alpha-2.
    pub country: Option<String>,
    /// Latitude and longitude, degrees.
    pub coordinates: Option<(f64, f64)>,
}

impl GeoDb {
    /// Opens the database at `path`; the error says why it cannot be used.
    pub fn open(path: &Path) -> Result<GeoDb, String> {
        let reader = maxminddb::Reader::open_readfile(path)
            .map_err(|e| format!("PALISADE_GEOIP_DB ({}): {e}", path.display()))?;
        Ok(GeoDb { reader })
    }

    /// The place of `ip`, when the database knows it.
    pub fn locate(&self, ip: IpAddr) -> Option<Place> {
        let found = self.reader.lookup(ip).ok()?;
        let city: maxminddb::geoip2::City<'_> = found.decode().ok()??;
        let coordinates = city.location.latitude.zip(city.location.longitude);
        let country = city.country.iso_code.map(str::to_owned);
        (country.is_some() || coordinates.is_some()).then_some(Place {
            country,
            coordinates,
        })
    }
}

/// Great-circle distance in kilometres (haversine, mean Earth radius).
pub fn distance_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lat1, lon1) = (a.0.to_radians(), a.1.to_radians());
    let (lat2, lon2) = (b.0.to_radians(), b.1.to_radians());
    let h = ((lat2 - lat1) / 2.0).sin().powi(2)
        + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paris_to_sydney_is_about_16960_km() {
        let d = distance_km((48.8566, 2.3522), (-33.8688, 151.2093));
        assert!((16_900.0..17_050.0).contains(&d), "{d}");
        assert!(distance_km((1.0, 1.0), (1.0, 1.0)).abs() < 1e-9);
    }
}
