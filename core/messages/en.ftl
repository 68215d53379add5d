# The texts assent itself composes for people: push defaults, SMS, voice calls, email.
# English. Every file has the same message ids.
push-title = Sign-in request
push-body = Approve sign-in to { $app }?
new-device-title = New device
new-device-body = Someone wants to add a new device to your { $app } account. Approve?
sms-code = { $code } is your { $app } sign-in code. It expires in { $minutes } min.
voice-code = Your { $app } sign-in code is { $digits }. Again: { $digits }.
email-subject = Your { $app } sign-in code
email-code =
    Your { $app } sign-in code is { $code }.

    It expires in { $minutes } minutes. If you did not try to sign in, change your password.
ciba-body = { $client } asks you to sign in
ciba-body-binding = { $client } asks you to sign in: { $binding }
