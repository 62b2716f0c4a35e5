//! The generator rules of data-model.md as pure functions of a random number generator, so that
//! the same seed gives the same rows whatever the destination (MySQL, PostgreSQL, or the
//! in-memory source of the demo).

use chrono::{Days, NaiveDate};
use rand::Rng;

use super::names::COUNTRIES;

/// Specialty of each group of three doctors: ID_DOCTOR 1-3 is the first, 4-6 the second, ...
pub const AREAS: [&str; 10] = [
    "Allergist",
    "Cardiologist",
    "Dermatologist",
    "Oncologist",
    "Ophthalmologist",
    "General",
    "Gynaecologist",
    "Obstetrician",
    "Urologist",
    "Pediatrician",
];

/// The shifts: ID_SHIFT 1..3.
pub const SHIFTS: [&str; 3] = ["Morning", "Evening", "Dawn"];

/// First day a visit can have.
pub fn first_service_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2020, 1, 1).unwrap_or(NaiveDate::MIN)
}

/// Specialty of doctor `id_doctor` (1..30).
pub fn area_of(id_doctor: i32) -> &'static str {
    let group = usize::try_from((id_doctor - 1).max(0) / 3).unwrap_or(0);
    AREAS.get(group).copied().unwrap_or("General")
}

/// Shift of doctor `id_doctor`: round-robin 1, 2, 3 within each specialty.
pub fn shift_of(id_doctor: i32) -> i32 {
    (id_doctor - 1).rem_euclid(3) + 1
}

/// Symptoms a doctor of `area` treats; empty where the original recorded none.
pub fn symptoms_of(area: &str) -> &'static [&'static str] {
    match area {
        "General" => &[
            "Cough",
            "Fever",
            "Sore throat",
            "Chest pains",
            "Headaches",
            "Heartburn",
        ],
        "Allergist" => &["Rhinitis", "Sinusitis"],
        "Oncologist" => &["Cancer"],
        "Cardiologist" => &["Heart Attack", "High Blood Pressure"],
        "Dermatologist" => &["Pimple", "Wart", "Dandruff"],
        "Pediatrician" => &["Fever", "Diarrhea", "Heartburn", "Cough"],
        _ => &[],
    }
}

/// A doctor in `first..=last`, uniformly.
fn doctor_in<R: Rng>(rng: &mut R, first: i32, last: i32) -> i32 {
    rng.random_range(first..=last)
}

/// The doctor of a visit, by the patient's sex and age (data-model.md):
/// children see General or Pediatrician; females over 14 half the general pool, half
/// Gynaecologist/Obstetrician; females of 13 or 14 the general pool; males of 13 or more half
/// the general pool, half Urologist.
pub fn doctor_for<R: Rng>(rng: &mut R, sex: &str, age: i32) -> i32 {
    if age <= 12 {
        if rng.random_bool(0.5) {
            doctor_in(rng, 16, 18)
        } else {
            doctor_in(rng, 28, 30)
        }
    } else if sex == "F" {
        if age > 14 && rng.random_bool(0.5) {
            doctor_in(rng, 19, 24)
        } else {
            doctor_in(rng, 1, 18)
        }
    } else if rng.random_bool(0.5) {
        doctor_in(rng, 1, 18)
    } else {
        doctor_in(rng, 25, 27)
    }
}

/// Symptoms of a visit to `id_doctor`, uniformly among the specialty's; `None` where there are
/// none.
pub fn symptoms_for<R: Rng>(rng: &mut R, id_doctor: i32) -> Option<&'static str> {
    let list = symptoms_of(area_of(id_doctor));
    if list.is_empty() {
        None
    } else {
        list.get(rng.random_range(0..list.len())).copied()
    }
}

/// ID_SMOKE: 1, 2 or 3 from the age of 16, else unknown.
pub fn smoke_for<R: Rng>(rng: &mut R, age: i32) -> Option<i32> {
    (age >= 16).then(|| rng.random_range(1..=3))
}

/// A generated patient.
#[derive(Debug, Clone, PartialEq)]
pub struct Patient {
    /// ID_PATIENT.
    pub id_patient: i32,
    /// Full name.
    pub name: String,
    /// `M` or `F`.
    pub sex: &'static str,
    /// 0..=115.
    pub age: i32,
    /// Two-line address.
    pub address: String,
    /// One of the eight countries.
    pub country: &'static str,
    /// Phone number.
    pub number: String,
    /// E-mail address.
    pub email: String,
}

/// Makes patient `id_patient`.
pub fn patient<R: Rng>(rng: &mut R, id_patient: i32) -> Patient {
    let sex = if rng.random_bool(0.5) { "M" } else { "F" };
    let age = rng.random_range(0..=115);
    let country = &COUNTRIES[rng.random_range(0..COUNTRIES.len())];
    let name = country.name(rng, sex);
    let address = country.address(rng);
    let number = country.phone(rng);
    let email = country.email(rng, &name);
    Patient {
        id_patient,
        name,
        sex,
        age,
        address,
        country: country.name,
        number,
        email,
    }
}

/// The patient fields a visit copies (events are denormalised in the source).
#[derive(Debug, Clone, PartialEq)]
pub struct VisitPatient {
    /// ID_PATIENT.
    pub id_patient: i32,
    /// Name.
    pub name: String,
    /// `M` or `F`.
    pub sex: String,
    /// Age.
    pub age: i32,
}

/// A generated visit (one row of `events`, without its auto-increment ID).
#[derive(Debug, Clone, PartialEq)]
pub struct Visit {
    /// Index of the patient in the list the visit was drawn from.
    pub patient_idx: usize,
    /// ID_DOCTOR.
    pub id_doctor: i32,
    /// ID_SMOKE.
    pub id_smoke: Option<i32>,
    /// SYMPTOMS.
    pub symptoms: Option<&'static str>,
    /// DATE_OF_SERVICE.
    pub date_of_service: NaiveDate,
}

/// Makes a visit of one of `patients`, on a day in `first..=last`.
pub fn visit<R: Rng>(
    rng: &mut R,
    patients: &[VisitPatient],
    first: NaiveDate,
    n_days: u64,
) -> Option<Visit> {
    if patients.is_empty() {
        return None;
    }
    let patient_idx = rng.random_range(0..patients.len());
    let patient = patients.get(patient_idx)?;
    let id_doctor = doctor_for(rng, &patient.sex, patient.age);
    let symptoms = symptoms_for(rng, id_doctor);
    let id_smoke = smoke_for(rng, patient.age);
    let offset = rng.random_range(0..n_days.max(1));
    let date_of_service = first.checked_add_days(Days::new(offset)).unwrap_or(first);
    Some(Visit {
        patient_idx,
        id_doctor,
        id_smoke,
        symptoms,
        date_of_service,
    })
}

/// Number of days from 2020-01-01 up to the day before `today`.
pub fn service_days(today: NaiveDate) -> u64 {
    let days = (today - first_service_day()).num_days();
    u64::try_from(days).unwrap_or(1).max(1)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn rng() -> rand_chacha::ChaCha8Rng {
        rand_chacha::ChaCha8Rng::seed_from_u64(42)
    }

    #[test]
    fn doctors_follow_sex_and_age() {
        let mut rng = rng();
        for _ in 0..20_000 {
            let age = rng.random_range(0..=115);
            let sex = if rng.random_bool(0.5) { "M" } else { "F" };
            let doctor = doctor_for(&mut rng, sex, age);
            assert!((1..=30).contains(&doctor));
            match area_of(doctor) {
                "Gynaecologist" | "Obstetrician" => assert!(sex == "F" && age > 14),
                "Urologist" => assert!(sex == "M" && age >= 13),
                "Pediatrician" => assert!(age <= 12),
                _ => {}
            }
            if age <= 12 {
                assert!(matches!(area_of(doctor), "General" | "Pediatrician"));
            }
        }
    }

    #[test]
    fn every_branch_is_reached() {
        let mut rng = rng();
        let mut seen = std::collections::BTreeSet::new();
        for (sex, age) in [("F", 5), ("M", 5), ("F", 13), ("F", 40), ("M", 40)] {
            for _ in 0..500 {
                seen.insert(area_of(doctor_for(&mut rng, sex, age)));
            }
        }
        assert_eq!(seen.len(), 10, "{seen:?}");
    }

    #[test]
    fn areas_shifts_and_symptoms() {
        assert_eq!(area_of(1), "Allergist");
        assert_eq!(area_of(18), "General");
        assert_eq!(area_of(19), "Gynaecologist");
        assert_eq!(area_of(24), "Obstetrician");
        assert_eq!(area_of(27), "Urologist");
        assert_eq!(area_of(30), "Pediatrician");
        assert_eq!(
            (shift_of(1), shift_of(2), shift_of(3), shift_of(4)),
            (1, 2, 3, 1)
        );
        let mut rng = rng();
        for doctor in 1..=30 {
            for _ in 0..50 {
                match symptoms_for(&mut rng, doctor) {
                    Some(s) => assert!(symptoms_of(area_of(doctor)).contains(&s)),
                    None => assert!(symptoms_of(area_of(doctor)).is_empty()),
                }
            }
        }
    }

    #[test]
    fn smoke_is_unknown_under_16() {
        let mut rng = rng();
        for age in 0..=115 {
            match smoke_for(&mut rng, age) {
                Some(s) => assert!(age >= 16 && (1..=3).contains(&s)),
                None => assert!(age < 16),
            }
        }
    }

    #[test]
    fn same_seed_same_patients_and_visits() {
        let make = || {
            let mut rng = rng();
            let patients: Vec<Patient> = (1..=50).map(|id| patient(&mut rng, id)).collect();
            let vp: Vec<VisitPatient> = patients
                .iter()
                .map(|p| VisitPatient {
                    id_patient: p.id_patient,
                    name: p.name.clone(),
                    sex: p.sex.to_string(),
                    age: p.age,
                })
                .collect();
            let day = NaiveDate::from_ymd_opt(2024, 6, 1).unwrap();
            let visits: Vec<Visit> = (0..200)
                .filter_map(|_| visit(&mut rng, &vp, first_service_day(), service_days(day)))
                .collect();
            (patients, visits)
        };
        let (p1, v1) = make();
        let (p2, v2) = make();
        assert_eq!(p1, p2);
        assert_eq!(v1, v2);
        let last = NaiveDate::from_ymd_opt(2024, 5, 31).unwrap();
        assert!(
            v1.iter()
                .all(|v| v.date_of_service >= first_service_day() && v.date_of_service <= last)
        );
        assert!(p1.iter().all(|p| (0..=115).contains(&p.age)));
    }
}
