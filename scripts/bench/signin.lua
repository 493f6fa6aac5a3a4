-- wrk script: POST /api/v1/sessions with SIGN_IN_EMAIL and SIGN_IN_PASSWORD (the password
-- right or wrong, as the benchmark asks).
local email = os.getenv("SIGN_IN_EMAIL")
local password = os.getenv("SIGN_IN_PASSWORD")
wrk.method = "POST"
wrk.path = "/api/v1/sessions"
wrk.headers["Content-Type"] = "application/json"
wrk.body = string.format(
  '{"email":"%s","password":"%s","kustomer_user":{"id":"bench","email":"%s"}}',
  email, password, email)
