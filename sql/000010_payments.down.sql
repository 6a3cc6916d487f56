DROP TABLE payouts;
DROP TABLE payments;
