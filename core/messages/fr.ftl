# The texts assent itself composes for people: push defaults, SMS, voice calls, email.
# French. Every file has the same message ids.
push-title = Demande de connexion
push-body = Approuver la connexion à { $app } ?
new-device-title = Nouvel appareil
new-device-body = Quelqu'un veut ajouter un nouvel appareil à votre compte { $app }. Approuver ?
sms-code = { $code } est votre code de connexion { $app }. Il expire dans { $minutes } min.
voice-code = Votre code de connexion { $app } est { $digits }. Je répète : { $digits }.
email-subject = Votre code de connexion { $app }
email-code =
    Votre code de connexion { $app } est { $code }.

    Il expire dans { $minutes } minutes. Si vous n'avez pas essayé de vous connecter, changez votre mot de passe.
ciba-body = { $client } vous demande de vous connecter
ciba-body-binding = { $client } vous demande de vous connecter : { $binding }
