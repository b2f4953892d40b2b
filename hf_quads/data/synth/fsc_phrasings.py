"""Hand-written English phrasings of the 31 Fluent Speech Commands intents.

Eight phrasings per intent (248 in all, as many as FSC has distinct phrases), in
FSC's style: short smart-home commands, no trailing punctuation, some terse
("Lights on", "Volume up"), some chatty ("I need to turn the heat up in the
bedroom"). The keys are :data:`hf_quads.data.fsc.FSC_INTENT_TRIPLES`, spelled
exactly as FSC's ``action``, ``object`` and ``location`` columns.
"""

from __future__ import annotations

from ..fsc import FSC_INTENT_TRIPLES

#: Room words used for each FSC location; a second word is an alternative some speakers use.
_ROOM_WORDS: dict[str, tuple[str, str]] = {
    "kitchen": ("kitchen", "kitchen"),
    "bedroom": ("bedroom", "bedroom"),
    "washroom": ("washroom", "bathroom"),
}

_LIGHTS_ON_ROOM = (
    "Turn on the lights in the {room}",
    "{Room} lights on",
    "Switch on the {room} lights",
    "Turn the {room} lights on",
    "Lights on in the {room}",
    "Switch on the lights in the {room}",
    "Turn on the {alt} light",
    "Put the lights on in the {alt}",
)
_LIGHTS_OFF_ROOM = (
    "Turn off the lights in the {room}",
    "{Room} lights off",
    "Switch off the {room} lights",
    "Turn the {room} lights off",
    "Lights off in the {room}",
    "Switch off the lights in the {room}",
    "Turn off the {alt} light",
    "Kill the lights in the {alt}",
)
_HEAT_UP_ROOM = (
    "Turn the heat up in the {room}",
    "Increase the temperature in the {room}",
    "Make the {room} warmer",
    "{Room} heat up",
    "Turn up the heat in the {room}",
    "I need to turn the heat up in the {room}",
    "Increase the heating in the {alt}",
    "Heat up the {alt}",
)
_HEAT_DOWN_ROOM = (
    "Turn the heat down in the {room}",
    "Decrease the temperature in the {room}",
    "Make the {room} cooler",
    "{Room} heat down",
    "Turn down the heat in the {room}",
    "I need to turn the heat down in the {room}",
    "Decrease the heating in the {alt}",
    "Cool down the {alt}",
)
_ROOM_TEMPLATES: dict[tuple[str, str], tuple[str, ...]] = {
    ("activate", "lights"): _LIGHTS_ON_ROOM,
    ("deactivate", "lights"): _LIGHTS_OFF_ROOM,
    ("increase", "heat"): _HEAT_UP_ROOM,
    ("decrease", "heat"): _HEAT_DOWN_ROOM,
}

_NO_LOCATION: dict[tuple[str, str], tuple[str, ...]] = {
    ("activate", "lamp"): (
        "Turn on the lamp",
        "Lamp on",
        "Switch on the lamp",
        "Turn the lamp on",
        "Switch the lamp on",
        "Put the lamp on",
        "Turn my lamp on",
        "Could you turn on the lamp",
    ),
    ("deactivate", "lamp"): (
        "Turn off the lamp",
        "Lamp off",
        "Switch off the lamp",
        "Turn the lamp off",
        "Switch the lamp off",
        "Shut off the lamp",
        "Turn my lamp off",
        "Could you turn off the lamp",
    ),
    ("activate", "lights"): (
        "Turn on the lights",
        "Lights on",
        "Switch on the lights",
        "Turn the lights on",
        "Switch the lights on",
        "Put the lights on",
        "I need some light",
        "Turn on the light",
    ),
    ("deactivate", "lights"): (
        "Turn off the lights",
        "Lights off",
        "Switch off the lights",
        "Turn the lights off",
        "Switch the lights off",
        "Kill the lights",
        "Shut off the lights",
        "Turn off the light",
    ),
    ("activate", "music"): (
        "Play the music",
        "Put on some music",
        "Start the music",
        "Resume the music",
        "Play music",
        "Turn on the music",
        "Music on",
        "Play some music",
    ),
    ("deactivate", "music"): (
        "Pause the music",
        "Stop the music",
        "Turn off the music",
        "Music off",
        "Stop playing music",
        "Pause",
        "Turn the music off",
        "Switch off the music",
    ),
    ("increase", "heat"): (
        "Turn the heat up",
        "Increase the temperature",
        "Make it warmer",
        "Heat up",
        "Turn up the heat",
        "I need to turn the heat up",
        "It's too cold in here",
        "More heat",
    ),
    ("decrease", "heat"): (
        "Turn the heat down",
        "Decrease the temperature",
        "Make it cooler",
        "Heat down",
        "Turn down the heat",
        "I need to turn the heat down",
        "It's too hot in here",
        "Less heat",
    ),
    ("increase", "volume"): (
        "Make it louder",
        "Turn up the volume",
        "Increase the volume",
        "Volume up",
        "Louder",
        "Turn it up",
        "I can't hear that",
        "Louder please",
    ),
    ("decrease", "volume"): (
        "Make it quieter",
        "Turn down the volume",
        "Decrease the volume",
        "Volume down",
        "Quieter",
        "Turn it down",
        "That's too loud",
        "Lower the volume",
    ),
    ("bring", "juice"): (
        "Bring me some juice",
        "Bring me juice",
        "Get me some juice",
        "I want some juice",
        "Fetch me some juice",
        "Juice please",
        "Could you bring me some juice",
        "Go get me some juice",
    ),
    ("bring", "newspaper"): (
        "Bring me the newspaper",
        "Get me the newspaper",
        "Fetch the newspaper",
        "Newspaper please",
        "Go get the newspaper",
        "I want the newspaper",
        "Bring the newspaper",
        "Could you bring me the newspaper",
    ),
    ("bring", "socks"): (
        "Bring me my socks",
        "Get me my socks",
        "Fetch my socks",
        "Socks please",
        "Go get my socks",
        "I need my socks",
        "Bring my socks",
        "Could you bring me my socks",
    ),
    ("bring", "shoes"): (
        "Bring me my shoes",
        "Get me my shoes",
        "Fetch my shoes",
        "Shoes please",
        "Go get my shoes",
        "I need my shoes",
        "Bring my shoes",
        "Could you bring me my shoes",
    ),
    ("change language", "none"): (
        "Change language",
        "Language settings",
        "Switch language",
        "Change the language",
        "Language",
        "Open language settings",
        "Set the language",
        "I want to change the language",
    ),
}

_LANGUAGE_TEMPLATES: tuple[str, ...] = (
    "Switch the language to {lang}",
    "Change language to {lang}",
    "Set the language to {lang}",
    "{lang}",
    "Use {lang}",
    "Speak {lang}",
    "Switch to {lang}",
    "{lang} please",
)


def _phrasings_for(action: str, obj: str, location: str) -> tuple[str, ...]:
    if action == "change language" and obj != "none":
        return tuple(t.format(lang=obj) for t in _LANGUAGE_TEMPLATES)
    if location != "none":
        room, alt = _ROOM_WORDS[location]
        return tuple(
            t.format(room=room, Room=room.capitalize(), alt=alt)
            for t in _ROOM_TEMPLATES[(action, obj)]
        )
    return _NO_LOCATION[(action, obj)]


#: Intent triple -> its eight English phrasings (what the speaker says).
FSC_PHRASINGS: dict[tuple[str, str, str], tuple[str, ...]] = {
    triple: _phrasings_for(*triple) for triple in FSC_INTENT_TRIPLES
}

#: Phrasings per intent (every intent has the same number, so "all" stays balanced).
FSC_PHRASINGS_PER_INTENT: int = len(FSC_PHRASINGS[FSC_INTENT_TRIPLES[0]])
