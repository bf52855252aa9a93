# Reference values for tests/unit/test_splines.py: Cox with ns(x, df = 3), contrasts
# against the median of x. Usage:
#   .venv/bin/python -c "from tests.unit.test_splines import simulate; simulate().to_csv('/tmp/spline.csv', index=False)"
#   Rscript tests/reference/make_spline_reference.R /tmp/spline.csv
suppressPackageStartupMessages({library(survival); library(splines)})
d <- read.csv(commandArgs(trailingOnly = TRUE)[1])
basis <- ns(d$x, df = 3)
fit <- coxph(Surv(t, e) ~ basis + z, data = d, ties = "efron")
grid <- c(0.3, 0.5, 0.8, 1.0, 1.2, 1.4)
C <- predict(basis, grid) - predict(basis, rep(median(d$x), length(grid)))
b <- coef(fit)[1:3]; V <- vcov(fit)[1:3, 1:3]
cat(sprintf("(%g, %.10f, %.10f),\n", grid, C %*% b, sqrt(diag(C %*% V %*% t(C)))), sep = "")
cat("knots", attr(basis, "Boundary.knots"), attr(basis, "knots"), "\n")
