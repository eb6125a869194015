"""Opt-out by any reasonable means, in every shipped locale: keywords, phrases, and comments that stay comments."""

from __future__ import annotations

from importlib import resources

import pytest

from campaigns.messages.catalogue import LOCALES
from campaigns.replies.keywords import Intent, KeywordFileError, consent_intent, rules
from campaigns.replies.parser import Help, OptIn, OptOut, Score, Unclear, parse_reply

# Per shipped locale: keyword replies people send, revocations in a sentence, and comments that mention a
# keyword-like word but are about the product.
CASES: dict[str, tuple[list[str], list[str], list[str]]] = {
    "en": (
        ["STOP", "Stop.", "stop please", "Unsubscribe!", "QUIT", "end", "revoke", "opt out", "Cancel"],
        [
            "Stop texting me",
            "please remove me from your list",
            "I want to opt out",
            "9 but stop sending these",
        ],
        ["the app won't stop crashing", "I had to cancel my order twice", "end of month invoices are late"],
    ),
    "fr": (
        ["ARRET", "ARRÊT", "arrêt svp", "Arrete", "STOP", "Désabonner"],
        [
            "Merci de me désinscrire de votre liste",
            "Arrêtez de m'envoyer des SMS",
            "je veux ne plus recevoir",
        ],
        ["l'appli ne s'arrête pas de planter", "le service est à l'arrêt depuis lundi"],
    ),
    "es": (
        ["BAJA", "baja por favor", "Parar", "No más", "cancelar"],
        ["Por favor, quiero darme de baja", "No me escriban más", "dejen de enviar mensajes"],
        ["la app no para de fallar", "tuve que cancelar mi pedido dos veces"],
    ),
    "de": (
        ["STOPP", "Stopp bitte", "ENDE", "abmelden", "Abbestellen"],
        ["Bitte keine SMS mehr", "Melden Sie mich ab, danke", "löschen Sie meine Nummer"],
        ["die App hört nicht auf abzustürzen", "Ende der Woche kam die Lieferung"],
    ),
    "it": (
        ["STOP", "basta", "Annulla", "cancellami"],
        ["Non scrivermi più per favore", "basta messaggi grazie"],
        ["l'app non smette di bloccarsi", "ho dovuto annullare l'ordine"],
    ),
    "nl": (
        ["STOP", "Stoppen", "afmelden", "uitschrijven aub"],
        ["Meld me af alstublieft", "geen berichten meer graag"],
        ["de app stopt steeds met werken", "het einde van de levering was goed"],
    ),
    "pt": (
        ["PARAR", "pare", "SAIR", "cancelar por favor"],
        ["Não quero mais mensagens", "parem de enviar isso"],
        ["o app não para de travar", "tive que cancelar o pedido"],
    ),
    "fi": (
        ["LOPETA", "lopeta kiitos", "Peruuta", "stop"],
        ["En halua viestejä", "poistakaa minut listalta"],
        ["sovellus ei lopeta kaatuilua", "jouduin peruuttamaan tilauksen"],
    ),
    "vi": (
        ["HỦY", "huy", "Hủy ạ", "từ chối", "hủy đăng ký"],
        ["Vui lòng hủy đăng ký cho tôi", "đừng nhắn tin cho tôi nữa", "dung gui tin nhan nua"],
        ["ứng dụng cứ bị dừng hoài", "tôi phải hủy đơn hàng hai lần", "Đúng"],
    ),
    "zh-Hans": (
        ["退订", "TD", "td", "请退订", "取消"],
        ["请不要再发短信了", "我要取消订阅"],
        ["应用一直停止运行", "取消订单很麻烦"],
    ),
    "zh-Hant": (
        ["退訂", "TD", "請退訂", "取消"],
        ["請不要再傳簡訊", "我要取消訂閱"],
        ["應用程式一直停止運作", "取消訂單很麻煩"],
    ),
    "ar": (
        [
            "إيقاف",
            "ايقاف",
            "إيقاف من فضلك",
            "الغاء",
            "إلغاء",
            "توقف",
            "إلغاء الاشتراك",
            "STOP",
            "إيـقاف!",
            "ایقاف",  # a Persian keyboard's yeh (U+06CC)
            "ستوب",  # STOP in Arabic letters
        ],
        [
            "أرجو إلغاء الاشتراك في هذه الخدمة",
            "توقفوا عن إرسال الرسائل",
            "لا ترسلوا لي رسائل بعد الآن",
            "احذفوا رقمي من فضلكم",
            "٩ لكن أوقفوا الرسائل",
        ],
        ["التطبيق توقف عن العمل مرتين", "اضطررت إلى إلغاء طلبي", "لا يتوقف التطبيق عن التعطل"],
    ),
}


def test_every_shipped_locale_has_a_keyword_file_and_cases() -> None:
    directory = resources.files("campaigns.messages").joinpath("keywords")
    files = {item.name.removesuffix(".yaml") for item in directory.iterdir() if item.name.endswith(".yaml")}
    assert set(LOCALES) <= files
    assert set(LOCALES) <= set(CASES)


@pytest.mark.parametrize("locale", sorted(CASES))
def test_keyword_replies_opt_out_in_every_locale(locale: str) -> None:
    keywords, _, _ = CASES[locale]
    for reply in keywords:
        result = parse_reply(reply, locale)
        assert isinstance(result, OptOut) and not result.free_text, (reply, result)


@pytest.mark.parametrize("locale", sorted(CASES))
def test_revocation_phrases_opt_out_in_every_locale(locale: str) -> None:
    _, phrases, _ = CASES[locale]
    for reply in phrases:
        result = parse_reply(reply, locale)
        assert isinstance(result, OptOut) and result.free_text, (reply, result)


@pytest.mark.parametrize("locale", sorted(CASES))
def test_a_keyword_inside_a_product_comment_stays_a_comment(locale: str) -> None:
    _, _, comments = CASES[locale]
    for reply in comments:
        assert consent_intent(reply) is None, reply
        assert isinstance(parse_reply(reply, locale), Score | Unclear), reply


def test_keywords_of_other_languages_count_whatever_the_contacts_locale() -> None:
    assert parse_reply("ARRET", "en") == OptOut("ARRET")
    assert parse_reply("退订", "de") == OptOut("退订")
    assert parse_reply("stop", "vi") == OptOut("STOP")


def test_opt_in_and_help_in_other_languages() -> None:
    assert parse_reply("AIDE") == Help("AIDE")
    assert parse_reply("Hilfe") == Help("HILFE")
    assert parse_reply("帮助") == Help("帮助")
    assert parse_reply("START") == OptIn("START")
    assert parse_reply("démarrer") == OptIn("DEMARRER")
    assert parse_reply("مساعدة") == Help("مساعده")  # teh marbuta and heh compare alike
    assert parse_reply("ابدأ") == OptIn("ابدا")


def test_a_translator_extends_the_rules_with_a_file() -> None:
    extended = rules(
        {"xx.yaml": "opt_out:\n  keywords: [zork]\n  phrases: [no more zorks]\ncourtesy: [plix]\n"}
    )
    assert consent_intent("ZORK plix", extended) == Intent("opt_out", "ZORK", free_text=False)
    assert consent_intent("I said no more zorks!", extended) == Intent(
        "opt_out", "NO MORE ZORKS", free_text=True
    )
    assert consent_intent("zork is fun", extended) is None


def test_a_broken_keyword_file_names_the_file_and_field() -> None:
    with pytest.raises(KeywordFileError, match=r"xx.yaml: opt_out.keywords"):
        rules({"xx.yaml": "opt_out:\n  keywords: stop\n"})


def test_a_long_reply_with_keywords_in_a_sentence_is_no_revocation() -> None:
    # Read once, word by word: "stop" in a sentence is no keyword, and no phrase follows it.
    assert consent_intent("stop " * 20_000 + "crashing") is None
