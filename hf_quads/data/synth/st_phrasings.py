"""Hand-written English commands with German reference translations.

Templates with slots (rooms, devices, things to bring, languages, numbers) give a
few hundred distinct sentence pairs for a small speech-translation corpus. Every
German slot value is stored in the grammatical form its template needs, so no
rule derives a form: rooms carry their dative phrases ("in der Küche", "im
Schlafzimmer", "aus dem Flur"), devices and objects their accusative ("den
Fernseher", "die Lampe", "einen Apfel"), and separable verbs put their particle
last ("Schalte das Licht in der Küche ein"). Umlauts and ß are real UTF-8
characters.
"""

from __future__ import annotations

#: (English room, German "in" + dative, German "aus" + dative).
ROOMS: tuple[tuple[str, str, str], ...] = (
    ("kitchen", "in der Küche", "aus der Küche"),
    ("bedroom", "im Schlafzimmer", "aus dem Schlafzimmer"),
    ("bathroom", "im Badezimmer", "aus dem Badezimmer"),
    ("living room", "im Wohnzimmer", "aus dem Wohnzimmer"),
    ("hallway", "im Flur", "aus dem Flur"),
    ("office", "im Büro", "aus dem Büro"),
    ("garage", "in der Garage", "aus der Garage"),
    ("dining room", "im Esszimmer", "aus dem Esszimmer"),
    ("guest room", "im Gästezimmer", "aus dem Gästezimmer"),
)

#: (English device with article, German accusative with article).
DEVICES: tuple[tuple[str, str], ...] = (
    ("the lamp", "die Lampe"),
    ("the radio", "das Radio"),
    ("the television", "den Fernseher"),
    ("the fan", "den Ventilator"),
    ("the heating", "die Heizung"),
    ("the coffee machine", "die Kaffeemaschine"),
    ("the dishwasher", "die Spülmaschine"),
    ("the washing machine", "die Waschmaschine"),
    ("the oven", "den Backofen"),
    ("the computer", "den Computer"),
    ("the air conditioning", "die Klimaanlage"),
)

#: Plausible (device index in DEVICES, room index in ROOMS) pairs.
_DEVICE_ROOMS: tuple[tuple[int, int], ...] = (
    (0, 1),  # lamp, bedroom
    (0, 3),  # lamp, living room
    (1, 0),  # radio, kitchen
    (1, 2),  # radio, bathroom
    (2, 3),  # television, living room
    (2, 1),  # television, bedroom
    (3, 1),  # fan, bedroom
    (3, 5),  # fan, office
    (5, 0),  # coffee machine, kitchen
    (9, 5),  # computer, office
)

#: (English thing to bring, German accusative).
ITEMS: tuple[tuple[str, str], ...] = (
    ("my socks", "meine Socken"),
    ("my shoes", "meine Schuhe"),
    ("the newspaper", "die Zeitung"),
    ("some juice", "etwas Saft"),
    ("a glass of water", "ein Glas Wasser"),
    ("a cup of coffee", "eine Tasse Kaffee"),
    ("a cup of tea", "eine Tasse Tee"),
    ("my glasses", "meine Brille"),
    ("my keys", "meine Schlüssel"),
    ("my phone", "mein Handy"),
    ("my book", "mein Buch"),
    ("the remote control", "die Fernbedienung"),
    ("a blanket", "eine Decke"),
    ("my jacket", "meine Jacke"),
    ("an apple", "einen Apfel"),
    ("a towel", "ein Handtuch"),
    ("my slippers", "meine Hausschuhe"),
    ("my wallet", "meine Geldbörse"),
)

#: (English language name, German adverb "auf Deutsch"/"Deutsch sprechen", German "ins ...e").
LANGUAGES: tuple[tuple[str, str, str], ...] = (
    ("German", "Deutsch", "ins Deutsche"),
    ("English", "Englisch", "ins Englische"),
    ("Chinese", "Chinesisch", "ins Chinesische"),
    ("Korean", "Koreanisch", "ins Koreanische"),
    ("French", "Französisch", "ins Französische"),
    ("Spanish", "Spanisch", "ins Spanische"),
    ("Italian", "Italienisch", "ins Italienische"),
    ("Japanese", "Japanisch", "ins Japanische"),
    ("Russian", "Russisch", "ins Russische"),
    ("Dutch", "Niederländisch", "ins Niederländische"),
    ("Portuguese", "Portugiesisch", "ins Portugiesische"),
    ("Turkish", "Türkisch", "ins Türkische"),
    ("Polish", "Polnisch", "ins Polnische"),
    ("Swedish", "Schwedisch", "ins Schwedische"),
    ("Greek", "Griechisch", "ins Griechische"),
)

_FIXED: tuple[tuple[str, str], ...] = (
    ("Turn on the lights.", "Schalte das Licht ein."),
    ("Turn off the lights.", "Schalte das Licht aus."),
    ("Lights on.", "Licht an."),
    ("Lights off.", "Licht aus."),
    ("Make the music louder.", "Mach die Musik lauter."),
    ("Make the music quieter.", "Mach die Musik leiser."),
    ("Make the radio louder.", "Mach das Radio lauter."),
    ("Make the radio quieter.", "Mach das Radio leiser."),
    ("Make the television louder.", "Mach den Fernseher lauter."),
    ("Make the television quieter.", "Mach den Fernseher leiser."),
    ("Turn up the volume.", "Mach lauter."),
    ("Turn down the volume.", "Mach leiser."),
    ("Pause the music.", "Halte die Musik an."),
    ("Stop the music.", "Stopp die Musik."),
    ("Play some music.", "Spiel etwas Musik."),
    ("Play the next song.", "Spiel das nächste Lied."),
    ("Play the previous song.", "Spiel das vorherige Lied."),
    ("Skip this song.", "Überspring dieses Lied."),
    ("Play some jazz.", "Spiel etwas Jazz."),
    ("Play some classical music.", "Spiel etwas klassische Musik."),
    ("Lock the front door.", "Schließ die Haustür ab."),
    ("Unlock the front door.", "Schließ die Haustür auf."),
    ("Open the garage door.", "Öffne das Garagentor."),
    ("Close the garage door.", "Schließ das Garagentor."),
    ("Open the blinds.", "Öffne die Jalousien."),
    ("Close the blinds.", "Schließ die Jalousien."),
    ("What is the weather like today?", "Wie ist das Wetter heute?"),
    ("What time is it?", "Wie spät ist es?"),
    ("Will it rain tomorrow?", "Wird es morgen regnen?"),
    ("How warm is it outside?", "Wie warm ist es draußen?"),
    ("Is the front door locked?", "Ist die Haustür abgeschlossen?"),
    ("Turn up the heating.", "Dreh die Heizung auf."),
    ("Turn down the heating.", "Dreh die Heizung herunter."),
    ("It is too cold in here.", "Hier drinnen ist es zu kalt."),
    ("It is too warm in here.", "Hier drinnen ist es zu warm."),
)


def _room_pairs() -> list[tuple[str, str]]:
    out = []
    for en, de_in, _ in ROOMS:
        out += [
            (f"Turn on the lights in the {en}.", f"Schalte das Licht {de_in} ein."),
            (f"Turn off the lights in the {en}.", f"Schalte das Licht {de_in} aus."),
            (f"Dim the lights in the {en}.", f"Dimme das Licht {de_in}."),
            (f"Make the lights in the {en} brighter.", f"Mach das Licht {de_in} heller."),
            (f"Turn up the heating in the {en}.", f"Dreh die Heizung {de_in} auf."),
            (f"Turn down the heating in the {en}.", f"Dreh die Heizung {de_in} herunter."),
            (f"It is too cold in the {en}.", f"Es ist zu kalt {de_in}."),
            (f"It is too warm in the {en}.", f"Es ist zu warm {de_in}."),
            (f"Open the window in the {en}.", f"Öffne das Fenster {de_in}."),
            (f"Close the window in the {en}.", f"Schließ das Fenster {de_in}."),
        ]
        for degrees in (18, 19, 20, 21, 22, 23, 24):
            out.append(
                (
                    f"Set the temperature in the {en} to {degrees} degrees.",
                    f"Stell die Temperatur {de_in} auf {degrees} Grad.",
                )
            )
    return out


def _device_pairs() -> list[tuple[str, str]]:
    out = []
    for en, de in DEVICES:
        out += [(f"Turn on {en}.", f"Schalte {de} ein."), (f"Turn off {en}.", f"Schalte {de} aus.")]
    for dev, room in _DEVICE_ROOMS:
        en, de = DEVICES[dev]
        room_en, de_in, _ = ROOMS[room]
        out += [
            (f"Switch on {en} in the {room_en}.", f"Schalte {de} {de_in} ein."),
            (f"Switch off {en} in the {room_en}.", f"Schalte {de} {de_in} aus."),
        ]
    return out


def _item_pairs() -> list[tuple[str, str]]:
    out = []
    for i, (en, de) in enumerate(ITEMS):
        out += [
            (f"Bring me {en}.", f"Bring mir {de}."),
            (f"Please bring me {en}.", f"Bitte bring mir {de}."),
            (f"Could you bring me {en}?", f"Kannst du mir {de} bringen?"),
            (f"I need {en}.", f"Ich brauche {de}."),
        ]
        for room in (i % len(ROOMS), (i + 4) % len(ROOMS)):
            room_en, _, de_from = ROOMS[room]
            out.append((f"Get me {en} from the {room_en}.", f"Hol mir {de} {de_from}."))
    return out


def _language_pairs() -> list[tuple[str, str]]:
    out = []
    for en, de, de_into in LANGUAGES:
        out += [
            (f"Switch the language to {en}.", f"Stell die Sprache auf {de} um."),
            (f"Change the language to {en}.", f"Ändere die Sprache auf {de}."),
            (f"I want to speak {en}.", f"Ich möchte {de} sprechen."),
            (f"Translate this into {en}.", f"Übersetze das {de_into}."),
            (f"Do you speak {en}?", f"Sprichst du {de}?"),
        ]
    return out


def _number_pairs() -> list[tuple[str, str]]:
    out = [
        (f"Set the volume to {n} percent.", f"Stell die Lautstärke auf {n} Prozent.")
        for n in range(10, 101, 10)
    ]
    out += [
        (f"Set a timer for {n} minutes.", f"Stell einen Timer auf {n} Minuten.")
        for n in (2, 3, 5, 10, 15, 20, 30, 45)
    ]
    out += [(f"Wake me up at {n} o'clock.", f"Weck mich um {n} Uhr.") for n in (5, 6, 7, 8, 9, 10)]
    return out


def _all_pairs() -> tuple[tuple[str, str], ...]:
    pairs = [
        *_FIXED,
        *_room_pairs(),
        *_device_pairs(),
        *_item_pairs(),
        *_language_pairs(),
        *_number_pairs(),
    ]
    seen: set[str] = set()
    for en, _ in pairs:
        if en in seen:  # pragma: no cover - a table error caught at import
            raise AssertionError(f"duplicate English sentence in the ST table: {en!r}")
        seen.add(en)
    return tuple(pairs)


#: Every (English sentence, German translation) pair, in a fixed order.
ST_SENTENCE_PAIRS: tuple[tuple[str, str], ...] = _all_pairs()
