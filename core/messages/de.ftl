# The texts assent itself composes for people: push defaults, SMS, voice calls, email.
# German. Every file has the same message ids.
push-title = Anmeldeanfrage
push-body = Anmeldung bei { $app } bestätigen?
new-device-title = Neues Gerät
new-device-body = Jemand möchte Ihrem { $app }-Konto ein neues Gerät hinzufügen. Bestätigen?
sms-code = { $code } ist Ihr Anmeldecode für { $app }. Er läuft in { $minutes } Min. ab.
voice-code = Ihr Anmeldecode für { $app } lautet { $digits }. Noch einmal: { $digits }.
email-subject = Ihr Anmeldecode für { $app }
email-code =
    Ihr Anmeldecode für { $app } lautet { $code }.

    Er läuft in { $minutes } Minuten ab. Wenn Sie sich nicht anmelden wollten, ändern Sie Ihr Passwort.
ciba-body = { $client } bittet Sie, sich anzumelden
ciba-body-binding = { $client } bittet Sie, sich anzumelden: { $binding }
