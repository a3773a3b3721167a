"""What a person asks of us, not what they report or ask about: the grammar's limits, in several languages."""

from __future__ import annotations

import pytest

from tests.test_intent import verdict


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # a complaint that happened, told in the past, is a report, not a threat
        (
            "Wir haben letztes Jahr eine Beschwerde bei der Datenschutzbehörde gegen einen Lieferanten eingereicht.",
            "none",
        ),
        (
            "Nous avons porté plainte auprès de la CNIL contre un autre prestataire l'an dernier.",
            "none",
        ),
        (
            "Vorig jaar hebben we een klacht ingediend bij de Autoriteit Persoonsgegevens, dus dit komt goed uit.",
            "none",
        ),
        ("W zeszłym roku złożyliśmy skargę do UODO na innego dostawcę, więc temat jest pilny.", "none"),
        ("Loni jsme podali stížnost na ÚOOÚ kvůli jinému dodavateli, takže to řešíme.", "none"),
        (
            "L'anno scorso abbiamo presentato un reclamo al Garante contro un altro fornitore, mi mandi l'offerta.",
            "none",
        ),
        ("El año pasado presentamos una reclamación ante la AEPD contra otro proveedor, envíeme la oferta.", "none"),
        # a threat, or a past complaint about our mail, still counts
        ("If you write again I will complain to the ICO.", "opt-out"),
        ("Noch eine Mail und ich beschwere mich bei der Datenschutzbehörde.", "opt-out"),
        ("I have already complained to the ICO about your mails.", "opt-out"),
        ("Ich habe mich wegen Ihrer Mails schon bei der Datenschutzbehörde beschwert.", "opt-out"),
    ],
)
def test_a_complaint_reported_in_the_past_is_no_threat(body: str, kind: str) -> None:
    v = verdict(body)
    assert v.verdict == kind, v.as_json()
