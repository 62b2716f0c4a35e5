//! Plausible people per country: names, addresses, phone numbers and e-mail addresses for the
//! eight countries the hospital serves. Obviously synthetic: short fixed lists, combined at
//! random.

use rand::Rng;

/// What is needed to make a plausible person of one country.
pub struct Country {
    /// Country name as stored in `patient.COUNTRY`.
    pub name: &'static str,
    male: &'static [&'static str],
    female: &'static [&'static str],
    surnames: &'static [&'static str],
    streets: &'static [&'static str],
    cities: &'static [&'static str],
    address: AddressStyle,
    phone: &'static str,
    domains: &'static [&'static str],
}

/// How a country writes an address (number before or after the street, postcode shape).
#[derive(Clone, Copy)]
enum AddressStyle {
    /// `Rua X 12\n1000-123 Lisboa`
    Portugal,
    /// `Xstraße 12\n10115 Berlin`
    Germany,
    /// `Rua X, 12\nSão Paulo - SP, 01000-000`
    Brazil,
    /// `Via X 12\n00100 Roma`
    Italy,
    /// `12 rue X\n75001 Paris`
    France,
    /// `12 X Street\nCity, ST 12345`
    UnitedStates,
    /// `Calle X 12\n06000 Ciudad, CDMX`
    Mexico,
    /// `12 X Road\nCity AB1 2CD`
    UnitedKingdom,
}

/// The eight countries of data-model.md.
pub const COUNTRIES: &[Country] = &[
    Country {
        name: "Portugal",
        male: &[
            "João",
            "Tiago",
            "Rui",
            "Nuno",
            "Miguel",
            "Pedro",
            "Duarte",
            "Gonçalo",
            "Afonso",
            "Francisco",
        ],
        female: &[
            "Maria", "Inês", "Beatriz", "Leonor", "Matilde", "Carolina", "Mariana", "Ana", "Sofia",
            "Rita",
        ],
        surnames: &[
            "Silva",
            "Santos",
            "Ferreira",
            "Pereira",
            "Oliveira",
            "Costa",
            "Rodrigues",
            "Martins",
            "Sousa",
            "Gonçalves",
            "Lopes",
            "Marques",
        ],
        streets: &[
            "Rua Augusta",
            "Avenida da Liberdade",
            "Rua de Santa Catarina",
            "Rua do Carmo",
            "Avenida dos Aliados",
            "Rua das Flores",
            "Travessa do Forno",
            "Largo do Rato",
        ],
        cities: &[
            "Lisboa", "Porto", "Braga", "Coimbra", "Faro", "Aveiro", "Setúbal", "Évora",
        ],
        address: AddressStyle::Portugal,
        phone: "+351 9## ### ###",
        domains: &["sapo.pt", "gmail.com", "mail.pt", "outlook.pt"],
    },
    Country {
        name: "Germany",
        male: &[
            "Lukas",
            "Jonas",
            "Leon",
            "Finn",
            "Paul",
            "Felix",
            "Maximilian",
            "Jan",
            "Tobias",
            "Stefan",
        ],
        female: &[
            "Anna", "Lena", "Hannah", "Sophie", "Marie", "Laura", "Julia", "Katrin", "Sabine",
            "Emma",
        ],
        surnames: &[
            "Müller",
            "Schmidt",
            "Schneider",
            "Fischer",
            "Weber",
            "Meyer",
            "Wagner",
            "Becker",
            "Hoffmann",
            "Schulz",
            "Koch",
            "Richter",
        ],
        streets: &[
            "Hauptstraße",
            "Bahnhofstraße",
            "Gartenstraße",
            "Schillerstraße",
            "Goethestraße",
            "Lindenweg",
            "Bergstraße",
            "Kirchplatz",
        ],
        cities: &[
            "Berlin",
            "Hamburg",
            "München",
            "Köln",
            "Frankfurt am Main",
            "Stuttgart",
            "Leipzig",
            "Dresden",
        ],
        address: AddressStyle::Germany,
        phone: "+49 15# #######",
        domains: &["web.de", "gmx.de", "t-online.de", "gmail.com"],
    },
    Country {
        name: "Brazil",
        male: &[
            "Matheus", "Gabriel", "Lucas", "Rafael", "Gustavo", "Felipe", "Bruno", "Thiago",
            "Rodrigo", "Eduardo",
        ],
        female: &[
            "Ana",
            "Juliana",
            "Camila",
            "Fernanda",
            "Larissa",
            "Beatriz",
            "Gabriela",
            "Aline",
            "Patrícia",
            "Letícia",
        ],
        surnames: &[
            "Silva", "Souza", "Costa", "Santos", "Oliveira", "Pereira", "Lima", "Carvalho",
            "Almeida", "Ribeiro", "Gomes", "Araújo",
        ],
        streets: &[
            "Rua das Palmeiras",
            "Avenida Paulista",
            "Rua Sete de Setembro",
            "Rua XV de Novembro",
            "Avenida Atlântica",
            "Rua da Consolação",
            "Rua Augusta",
            "Avenida Brasil",
        ],
        cities: &[
            "São Paulo - SP",
            "Rio de Janeiro - RJ",
            "Belo Horizonte - MG",
            "Salvador - BA",
            "Curitiba - PR",
            "Recife - PE",
            "Porto Alegre - RS",
            "Fortaleza - CE",
        ],
        address: AddressStyle::Brazil,
        phone: "+55 11 9####-####",
        domains: &["uol.com.br", "bol.com.br", "gmail.com", "terra.com.br"],
    },
    Country {
        name: "Italy",
        male: &[
            "Marco",
            "Luca",
            "Giuseppe",
            "Francesco",
            "Alessandro",
            "Matteo",
            "Lorenzo",
            "Andrea",
            "Davide",
            "Mirco",
        ],
        female: &[
            "Giulia",
            "Francesca",
            "Chiara",
            "Sara",
            "Martina",
            "Valentina",
            "Alessia",
            "Elena",
            "Clelia",
            "Federica",
        ],
        surnames: &[
            "Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci",
            "Marino", "Greco", "Bruno", "Gallo",
        ],
        streets: &[
            "Via Roma",
            "Via Garibaldi",
            "Corso Vittorio Emanuele",
            "Via Dante",
            "Via Mazzini",
            "Piazza del Popolo",
            "Via Verdi",
            "Viale Europa",
        ],
        cities: &[
            "Roma", "Milano", "Napoli", "Torino", "Palermo", "Bologna", "Firenze", "Genova",
        ],
        address: AddressStyle::Italy,
        phone: "+39 3## ### ####",
        domains: &["libero.it", "virgilio.it", "alice.it", "gmail.com"],
    },
    Country {
        name: "France",
        male: &[
            "Louis", "Gabriel", "Hugo", "Arthur", "Jules", "Lucas", "Nathan", "Thomas", "Antoine",
            "Julien",
        ],
        female: &[
            "Emma", "Jade", "Louise", "Alice", "Chloé", "Léa", "Manon", "Camille", "Anouk", "Inès",
        ],
        surnames: &[
            "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand",
            "Leroy", "Moreau", "Simon", "Laurent",
        ],
        streets: &[
            "rue de la Paix",
            "avenue Victor Hugo",
            "rue du Faubourg",
            "boulevard Saint-Michel",
            "rue de la République",
            "place de la Mairie",
            "rue Pasteur",
            "avenue Jean Jaurès",
        ],
        cities: &[
            "Paris",
            "Lyon",
            "Marseille",
            "Toulouse",
            "Nice",
            "Nantes",
            "Strasbourg",
            "Bordeaux",
        ],
        address: AddressStyle::France,
        phone: "+33 6 ## ## ## ##",
        domains: &["orange.fr", "free.fr", "laposte.net", "gmail.com"],
    },
    Country {
        name: "United States",
        male: &[
            "James", "John", "Robert", "Michael", "William", "David", "Daniel", "Matthew",
            "Anthony", "Joshua",
        ],
        female: &[
            "Mary",
            "Jennifer",
            "Linda",
            "Elizabeth",
            "Susan",
            "Jessica",
            "Sarah",
            "Karen",
            "Emily",
            "Ashley",
        ],
        surnames: &[
            "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson",
            "Anderson", "Taylor", "Moore", "Haynes",
        ],
        streets: &[
            "Main Street",
            "Oak Avenue",
            "Maple Drive",
            "Washington Boulevard",
            "Park Avenue",
            "Elm Street",
            "Lakeview Drive",
            "Cedar Lane",
        ],
        cities: &[
            "Springfield, IL",
            "Austin, TX",
            "Portland, OR",
            "Denver, CO",
            "Columbus, OH",
            "Raleigh, NC",
            "Madison, WI",
            "Boise, ID",
        ],
        address: AddressStyle::UnitedStates,
        phone: "+1 (###) ###-####",
        domains: &["gmail.com", "yahoo.com", "outlook.com", "aol.com"],
    },
    Country {
        name: "Mexico",
        male: &[
            "José",
            "Juan",
            "Luis",
            "Carlos",
            "Jorge",
            "Alejandro",
            "Miguel",
            "Fernando",
            "Ricardo",
            "Diego",
        ],
        female: &[
            "María",
            "Guadalupe",
            "Fernanda",
            "Daniela",
            "Valeria",
            "Ximena",
            "Sofía",
            "Regina",
            "Lucía",
            "Andrea",
        ],
        surnames: &[
            "Hernández",
            "García",
            "Martínez",
            "López",
            "González",
            "Rodríguez",
            "Pérez",
            "Sánchez",
            "Ramírez",
            "Flores",
            "Jaramillo",
            "Nieves",
        ],
        streets: &[
            "Calle Morelos",
            "Avenida Juárez",
            "Calle Hidalgo",
            "Paseo de la Reforma",
            "Avenida Insurgentes",
            "Calle Zaragoza",
            "Calle Allende",
            "Boulevard Independencia",
        ],
        cities: &[
            "Ciudad de México, CDMX",
            "Guadalajara, JAL",
            "Monterrey, NL",
            "Puebla, PUE",
            "Mérida, YUC",
            "Querétaro, QRO",
            "Toluca, MEX",
            "Oaxaca, OAX",
        ],
        address: AddressStyle::Mexico,
        phone: "+52 55 #### ####",
        domains: &["hotmail.com", "gmail.com", "prodigy.net.mx", "yahoo.com.mx"],
    },
    Country {
        name: "United Kingdom",
        male: &[
            "Oliver", "George", "Harry", "Jack", "Charlie", "Thomas", "Oscar", "William", "James",
            "Alfie",
        ],
        female: &[
            "Olivia",
            "Amelia",
            "Isla",
            "Ava",
            "Emily",
            "Sophie",
            "Grace",
            "Lily",
            "Freya",
            "Charlotte",
        ],
        surnames: &[
            "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies",
            "Robinson", "Wright", "Evans", "Walker",
        ],
        streets: &[
            "High Street",
            "Station Road",
            "Church Lane",
            "Victoria Road",
            "Green Lane",
            "Manor Road",
            "Park Road",
            "Queen Street",
        ],
        cities: &[
            "London",
            "Manchester",
            "Birmingham",
            "Leeds",
            "Bristol",
            "Liverpool",
            "Sheffield",
            "Edinburgh",
        ],
        address: AddressStyle::UnitedKingdom,
        phone: "+44 7### ######",
        domains: &["btinternet.com", "gmail.com", "hotmail.co.uk", "sky.com"],
    },
];

fn pick<R: Rng>(rng: &mut R, items: &[&'static str]) -> &'static str {
    // Every list above is non-empty; "" only guards against a future empty list.
    items
        .get(rng.random_range(0..items.len().max(1)))
        .copied()
        .unwrap_or("")
}

fn digits<R: Rng>(rng: &mut R, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

/// Replaces every `#` of `pattern` with a random digit.
fn fill<R: Rng>(rng: &mut R, pattern: &str) -> String {
    pattern
        .chars()
        .map(|c| {
            if c == '#' {
                char::from(b'0' + rng.random_range(0..10u8))
            } else {
                c
            }
        })
        .collect()
}

impl Country {
    /// A full name for `sex` (`M` or `F`).
    pub fn name<R: Rng>(&self, rng: &mut R, sex: &str) -> String {
        let first = if sex == "F" {
            pick(rng, self.female)
        } else {
            pick(rng, self.male)
        };
        format!("{first} {}", pick(rng, self.surnames))
    }

    /// A two-line postal address (the original's addresses hold a newline too).
    pub fn address<R: Rng>(&self, rng: &mut R) -> String {
        let street = pick(rng, self.streets);
        let city = pick(rng, self.cities);
        let number = rng.random_range(1..400u32);
        let upper = |rng: &mut R| char::from(b'A' + rng.random_range(0..26u8));
        match self.address {
            AddressStyle::Portugal => {
                format!(
                    "{street} {number}\n{}-{} {city}",
                    digits(rng, 4),
                    digits(rng, 3)
                )
            }
            AddressStyle::Germany => format!("{street} {number}\n{} {city}", digits(rng, 5)),
            AddressStyle::Brazil => {
                format!(
                    "{street}, {number}\n{city}, {}-{}",
                    digits(rng, 5),
                    digits(rng, 3)
                )
            }
            AddressStyle::Italy => format!("{street} {number}\n{} {city}", digits(rng, 5)),
            AddressStyle::France => format!("{number} {street}\n{} {city}", digits(rng, 5)),
            AddressStyle::UnitedStates => format!("{number} {street}\n{city} {}", digits(rng, 5)),
            AddressStyle::Mexico => format!("{street} {number}\n{} {city}", digits(rng, 5)),
            AddressStyle::UnitedKingdom => {
                let (a, b) = (upper(rng), upper(rng));
                let (c, d) = (upper(rng), upper(rng));
                format!(
                    "{number} {street}\n{city} {a}{b}{} {}{c}{d}",
                    rng.random_range(1..20u8),
                    rng.random_range(1..10u8)
                )
            }
        }
    }

    /// A phone number in the country's format.
    pub fn phone<R: Rng>(&self, rng: &mut R) -> String {
        fill(rng, self.phone)
    }

    /// An e-mail address made from the person's name and a domain common in the country.
    pub fn email<R: Rng>(&self, rng: &mut R, name: &str) -> String {
        let local: String = name
            .to_lowercase()
            .chars()
            .map(ascii_fold)
            .filter(|c| c.is_ascii_alphanumeric() || *c == ' ')
            .collect::<String>()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(".");
        format!(
            "{local}{}@{}",
            rng.random_range(1..1000u32),
            pick(rng, self.domains)
        )
    }
}

/// Folds the accented letters of the lists above to ASCII for e-mail addresses.
fn ascii_fold(c: char) -> char {
    match c {
        'á' | 'à' | 'â' | 'ã' | 'ä' => 'a',
        'é' | 'è' | 'ê' | 'ë' => 'e',
        'í' | 'ì' | 'î' | 'ï' => 'i',
        'ó' | 'ò' | 'ô' | 'õ' | 'ö' => 'o',
        'ú' | 'ù' | 'û' | 'ü' => 'u',
        'ç' => 'c',
        'ñ' => 'n',
        'ß' => 's',
        other => other,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn every_country_makes_short_plausible_values() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        assert_eq!(COUNTRIES.len(), 8);
        for country in COUNTRIES {
            for _ in 0..200 {
                let name = country.name(&mut rng, "F");
                let address = country.address(&mut rng);
                let phone = country.phone(&mut rng);
                let email = country.email(&mut rng, &name);
                assert!(name.chars().count() <= 100 && name.contains(' '), "{name}");
                assert!(
                    address.chars().count() <= 100 && address.contains('\n'),
                    "{address}"
                );
                assert!(phone.len() <= 50 && !phone.contains('#'), "{phone}");
                assert!(
                    email.is_ascii() && email.contains('@') && email.len() <= 100,
                    "{email}"
                );
            }
        }
    }
}
