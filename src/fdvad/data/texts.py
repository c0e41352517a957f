"""Sentences to speak, in several languages, written for this project (no corpus needed).

Each language has its own short list; `pseudo_sentence` adds endless variety by stringing random syllables
built from a language's letters, which espeak-ng pronounces with that language's rules.
"""

from __future__ import annotations

import random

SENTENCES: dict[str, list[str]] = {
    "en": [
        "The quick brown fox jumps over the lazy dog",
        "Please call me back when you get this message",
        "We will meet at the station at half past seven",
        "The weather is going to be cold and windy tomorrow",
        "I think the meeting went better than we expected",
        "Could you turn the music down a little",
        "She bought three apples and a loaf of bread",
        "Nobody knew where the old map had been hidden",
    ],
    "de": [
        "Guten Morgen, wie geht es Ihnen heute",
        "Der Zug nach Berlin hat leider zehn Minuten Verspätung",
        "Wir treffen uns morgen Abend im kleinen Café",
        "Das Wetter ist heute wirklich sehr schön",
        "Kannst du mir bitte das Salz geben",
        "Die Kinder spielen im Garten hinter dem Haus",
    ],
    "fr": [
        "Bonjour, je voudrais un café et un croissant",
        "Le train pour Paris part dans vingt minutes",
        "Nous avons passé une excellente soirée ensemble",
        "Il fait très beau aujourd'hui au bord de la mer",
        "Pouvez-vous répéter la question s'il vous plaît",
        "Les enfants jouent dans le jardin derrière la maison",
    ],
    "es": [
        "Buenos días, ¿cómo está usted hoy?",
        "El autobús llega a la plaza a las ocho",
        "Mañana vamos a visitar a mis abuelos",
        "Me gustaría reservar una mesa para dos personas",
        "La película de anoche fue muy divertida",
        "Los niños juegan en el parque cerca del río",
    ],
    "it": [
        "Buongiorno, vorrei un biglietto per Roma",
        "Oggi il cielo è sereno e fa caldo",
        "Ci vediamo domani sera davanti al cinema",
        "Il ristorante all'angolo fa una pizza buonissima",
        "Potresti chiudere la finestra per favore",
    ],
    "pt": [
        "Bom dia, tudo bem com você?",
        "O comboio para Lisboa está atrasado",
        "Vamos jantar juntos no sábado à noite",
        "A praia estava cheia de gente ontem",
        "Preciso de comprar pão e leite",
    ],
    "nl": [
        "Goedemorgen, hoe gaat het met je?",
        "De trein naar Amsterdam vertrekt om negen uur",
        "Morgen gaan we fietsen langs de rivier",
        "Het regent al de hele dag",
        "Wil je nog een kopje koffie?",
    ],
    "pl": [
        "Dzień dobry, jak się pan dzisiaj czuje?",
        "Pociąg do Krakowa odjeżdża za pięć minut",
        "Jutro idziemy do kina z przyjaciółmi",
        "Pogoda w górach była bardzo zmienna",
        "Czy mogę prosić o szklankę wody?",
    ],
    "sv": [
        "God morgon, hur mår du idag?",
        "Tåget till Stockholm är tyvärr försenat",
        "Vi ses på kaféet vid torget i kväll",
        "Det snöade hela natten i norr",
    ],
    "fi": [
        "Hyvää huomenta, mitä kuuluu?",
        "Juna Helsinkiin lähtee kymmenen minuutin päästä",
        "Huomenna menemme mökille järven rannalle",
        "Tänään sataa lunta koko päivän",
    ],
    "cs": [
        "Dobrý den, jak se máte?",
        "Vlak do Prahy má zpoždění deset minut",
        "Zítra večer půjdeme do divadla",
        "Venku je dnes velmi chladno",
    ],
    "ru": [
        "Доброе утро, как у вас дела?",
        "Поезд в Москву отправляется через десять минут",
        "Завтра мы пойдём в театр с друзьями",
        "Сегодня на улице очень холодно",
        "Пожалуйста, закройте окно",
    ],
    "hu": [
        "Jó reggelt, hogy van ma?",
        "A vonat Budapestre tíz percet késik",
        "Holnap este moziba megyünk",
        "Ma nagyon hideg van odakint",
    ],
    "tr": [
        "Günaydın, bugün nasılsınız?",
        "İstanbul treni on dakika gecikmeli",
        "Yarın akşam sinemaya gidiyoruz",
        "Bugün hava çok soğuk",
    ],
    "id": [
        "Selamat pagi, apa kabar hari ini?",
        "Kereta ke Jakarta terlambat sepuluh menit",
        "Besok malam kami akan pergi ke bioskop",
        "Hari ini cuaca sangat panas",
    ],
    "sw": [
        "Habari ya asubuhi, hujambo?",
        "Treni ya Nairobi imechelewa dakika kumi",
        "Kesho jioni tutakwenda sokoni",
        "Leo hali ya hewa ni nzuri sana",
    ],
    "ro": [
        "Bună dimineața, ce mai faci?",
        "Trenul spre București întârzie zece minute",
        "Mâine seară mergem la teatru",
    ],
    "el": [
        "Καλημέρα, τι κάνετε σήμερα;",
        "Το τρένο για την Αθήνα έχει καθυστέρηση",
        "Αύριο το βράδυ θα πάμε στο θέατρο",
    ],
}

# Letters per language for pseudo-words (latin-script languages plus Russian and Greek).
_CONSONANTS = {
    "ru": "бвгдзклмнпрстфхцчшщ", "el": "βγδζθκλμνξπρστφχψ",
}
_VOWELS = {"ru": "аеиоуыэюя", "el": "αεηιουω"}
_SHORT_WORDS = {
    "en": ["yes", "no", "okay", "hello", "thanks", "right", "sure", "wait"],
    "de": ["ja", "nein", "okay", "hallo", "danke", "genau"],
    "fr": ["oui", "non", "d'accord", "bonjour", "merci", "voilà"],
    "es": ["sí", "no", "vale", "hola", "gracias", "claro"],
    "it": ["sì", "no", "ciao", "grazie", "certo"],
    "ru": ["да", "нет", "привет", "спасибо", "ладно"],
}


def pseudo_sentence(language: str, rng: random.Random, n_words: int | None = None) -> str:
    """Random syllable words in `language`'s letters: phonetic variety without a corpus."""
    consonants = _CONSONANTS.get(language, "bcdfghjklmnprstvz")
    vowels = _VOWELS.get(language, "aeiou")
    n_words = n_words or rng.randint(2, 9)
    words = []
    for _ in range(n_words):
        syllables = rng.randint(1, 4)
        words.append("".join(rng.choice(consonants) + rng.choice(vowels) + (rng.choice(consonants) if rng.random() < 0.3 else "")
                             for _ in range(syllables)))
    return " ".join(words)


def short_word(language: str, rng: random.Random) -> str:
    words = _SHORT_WORDS.get(language) or _SHORT_WORDS["en"]
    return rng.choice(words)
