# The texts assent itself composes for people: push defaults, SMS, voice calls, email.
# Spanish. Every file has the same message ids.
push-title = Solicitud de inicio de sesión
push-body = ¿Aprobar el inicio de sesión en { $app }?
new-device-title = Nuevo dispositivo
new-device-body = Alguien quiere añadir un nuevo dispositivo a su cuenta de { $app }. ¿Aprobar?
sms-code = { $code } es su código de inicio de sesión de { $app }. Caduca en { $minutes } min.
voice-code = Su código de inicio de sesión de { $app } es { $digits }. Repito: { $digits }.
email-subject = Su código de inicio de sesión de { $app }
email-code =
    Su código de inicio de sesión de { $app } es { $code }.

    Caduca en { $minutes } minutos. Si no intentó iniciar sesión, cambie su contraseña.
ciba-body = { $client } le pide que inicie sesión
ciba-body-binding = { $client } le pide que inicie sesión: { $binding }
